"""`labcheck inspect`: skopeo inspect's flags and output, on the engine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from labcheck.commands import gotemplate
from labcheck.commands.imageflags import add_platform_flags, add_side_flags, side_options
from labcheck.engine import inspect as engine_inspect
from labcheck.engine.base.errors import InvalidReferenceError, in_context
from labcheck.engine.base.interfaces import ImageSource
from labcheck.engine.base.options import SideOptions
from labcheck.engine.format.platform import NoMatchingPlatformError
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.engine.reference.refs import ImageReference
from labcheck.engine.transports import open_source
from labcheck.errors import LabcheckError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="show an image's manifest, config and metadata (skopeo inspect)",
        description="Return low-level information about IMAGE, exactly as `skopeo inspect` prints it.",
    )
    parser.add_argument("image", metavar="IMAGE", help="transport:reference, e.g. docker://fedora, dir:/tmp/f")
    parser.add_argument("--raw", action="store_true", help="print the raw manifest or config, unmodified")
    parser.add_argument("--config", action="store_true", help="print the image's config, not its manifest")
    parser.add_argument("-n", "--no-tags", action="store_true", help="do not list the repository's tags")
    parser.add_argument("-f", "--format", metavar="TEMPLATE", help="Go template ({{.Field}}) applied to the output")
    parser.add_argument("--all-platforms", action="store_true", help="list every instance of a manifest list")
    parser.add_argument("--retry-times", type=int, default=0, metavar="N", help="retry N times on network errors")
    parser.add_argument("--username", help="user name for the registry")
    parser.add_argument("--password", help="password for the registry")
    add_side_flags(parser)
    add_platform_flags(parser)
    parser.set_defaults(func=run, skopeo_errors=True)  # skopeo's error text first, the hint on its own line


def run(args: argparse.Namespace) -> int:
    options = side_options(args)
    try:
        ref = parse_image_reference(args.image)
        source = open_source(ref, options)
    except InvalidReferenceError as exc:  # skopeo's wording: `Error parsing image name "REF": reason`
        raise InvalidReferenceError(f'Error parsing image name "{args.image}": {exc.reason}', hint=exc.hint,
                                    reference=args.image, reason=exc.reason) from None
    except LabcheckError as exc:
        raise in_context(exc, f'Error parsing image name "{args.image}"') from exc
    try:
        return _inspect(args, ref, source, options)
    except NoMatchingPlatformError as exc:
        raise in_context(exc, "Error parsing manifest for image") from exc
    finally:
        source.close()


def _inspect(args: argparse.Namespace, ref: ImageReference, source: ImageSource, options: SideOptions) -> int:
    if args.all_platforms:
        entries = [e.to_json() for e in engine_inspect.inspect_platforms(source)]
        sys.stdout.write(engine_inspect.render_json(entries))
    elif args.config and args.raw:
        _write_bytes(engine_inspect.raw_config(source, options))
    elif args.config:
        sys.stdout.write(engine_inspect.render_json(engine_inspect.oci_config(source, options)))
    elif args.raw:
        _write_bytes(engine_inspect.raw_manifest(source))
    else:
        docker_name = ref.docker_reference
        result = engine_inspect.inspect_image(
            source, options, list_tags=not args.no_tags, name=docker_name.name if docker_name else ""
        )
        for warning in result.warnings:
            print(f"labcheck inspect: warning: {warning}", file=sys.stderr)
        if args.format and not gotemplate.is_whole_json(args.format):
            # the struct skopeo renders has these fields even where its JSON omits them
            fields = {"Name": "", "Tag": "", "Variant": "", **result.to_json()}
            sys.stdout.write(gotemplate.render(args.format, fields) + "\n")
        else:
            sys.stdout.write(result.render())
    return 0


def _write_bytes(data: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
