"""`labcheck copy`: skopeo copy's flags and progress output, on the engine."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import Any

from labcheck.commands.imageflags import (
    add_platform_flags,
    add_side_flags,
    add_skopeo_only_flags,
    refuse_skopeo_only,
    side_options,
)
from labcheck.commands.progress import BarProgress, LineProgress
from labcheck.engine.archive.compression import COMPRESSORS
from labcheck.engine.base.errors import InvalidReferenceError
from labcheck.engine.base.options import CopyOptions, SideOptions
from labcheck.engine.copy import copy_image
from labcheck.engine.format.manifest import FORMATS
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.engine.reference.refs import ImageReference
from labcheck.errors import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "copy",
        help="copy an image between transports (skopeo copy)",
        description="Copy an image from SOURCE-IMAGE to DESTINATION-IMAGE, with skopeo's syntax and flags.",
    )
    parser.add_argument("source", metavar="SOURCE-IMAGE")
    parser.add_argument("destination", metavar="DESTINATION-IMAGE")
    parser.add_argument("-a", "--all", dest="all_images", action="store_true", help="copy every image of a list")
    parser.add_argument("-q", "--quiet", action="store_true", help="print no progress")
    parser.add_argument("-f", "--format", choices=sorted(FORMATS), help="manifest type of the destination")
    parser.add_argument("--image-parallel-copies", type=int, default=6, metavar="N", help="blobs copied at once")
    parser.add_argument("--retry-times", type=int, default=0, metavar="N", help="retry N times on network errors")
    parser.add_argument("--digestfile", metavar="PATH", help="write the manifest digest of the copy to PATH")
    parser.add_argument("--remove-signatures", action="store_true", help="do not copy signatures")
    parser.add_argument("--additional-tag", action="append", default=[], metavar="NAME:TAG",
                        help="another name for the image in a docker-archive: destination")
    parser.add_argument("--multi-arch", metavar="system|all|index-only",
                        help="a list: the image for this system, every image, or the list alone")
    parser.add_argument("--preserve-digests", action="store_true",
                        help="refuse any change that would alter the image's digests (no conversion, no recompression)")
    parser.add_argument("--dest-compress", action="store_true", help="dir: compresses uncompressed layers")
    parser.add_argument("--dest-decompress", action="store_true", help="dir: stores layers uncompressed")
    parser.add_argument("--dest-compress-format", metavar="FORMAT", help="compress layers with FORMAT (gzip, zstd)")
    parser.add_argument("--dest-compress-level", type=int, metavar="LEVEL", help="the compression LEVEL")
    parser.add_argument("--dest-oci-accept-uncompressed-layers", action="store_true",
                        help="oci: keeps uncompressed layers (by default it compresses them)")
    parser.add_argument("--dest-precompute-digests", action="store_true",
                        help="digest changed layers before uploading them (labcheck always does)")
    add_skopeo_only_flags(parser)
    add_side_flags(parser, what="both registries")
    add_side_flags(parser, "src-", what="the source registry")
    add_side_flags(parser, "dest-", what="the destination registry")
    add_platform_flags(parser)
    # skopeo's error text first, the hint on its own line
    parser.set_defaults(func=run, handle_signals=True, skopeo_errors=True)


MULTI_ARCH = ("system", "all", "index-only")


def copy_options(args: argparse.Namespace) -> CopyOptions:
    """The copy's own flags, checked with skopeo's messages."""
    if args.multi_arch is not None and args.all_images:
        raise UsageError("Cannot use --all and --multi-arch flags together")
    if args.multi_arch is not None and args.multi_arch not in MULTI_ARCH:
        raise UsageError(f'unknown multi-arch option "{args.multi_arch}". '
                         "Choose one of the supported options: 'system', 'all', or 'index-only'")
    if args.dest_compress_format is not None and args.dest_compress_format not in COMPRESSORS:
        raise UsageError(f'cannot find compressor for "{args.dest_compress_format}"',
                         hint=f"labcheck compresses with {' or '.join(COMPRESSORS)}; others need --driver skopeo")
    if args.additional_tag:  # the docker-archive: writer is imported only when it is used
        from labcheck.engine.transports.dockersave.archive import tagged_name

        for tag in args.additional_tag:
            tagged_name(tag)
    return CopyOptions(
        all_images=args.all_images or args.multi_arch == "all",
        image_parallel_copies=args.image_parallel_copies,
        manifest_format=args.format,
        remove_signatures=args.remove_signatures,
        digestfile=args.digestfile,
        compress_format=args.dest_compress_format,
        compress_level=args.dest_compress_level,
        preserve_digests=args.preserve_digests,
        index_only=args.multi_arch == "index-only",
        policy=args.policy,
        insecure_policy=args.insecure_policy,
    )


def destination_options(args: argparse.Namespace) -> SideOptions:
    return replace(
        side_options(args, "dest-"),
        compress=args.dest_compress,
        decompress=args.dest_decompress,
        oci_accept_uncompressed_layers=args.dest_oci_accept_uncompressed_layers,
        precompute_digests=args.dest_precompute_digests,
        additional_tags=tuple(args.additional_tag),
    )


def _parsed(text: str, side: str) -> ImageReference:
    try:
        return parse_image_reference(text)
    except InvalidReferenceError as exc:  # skopeo's wording: `Invalid source name REF: reason`
        raise InvalidReferenceError(f"Invalid {side} name {text}: {exc.reason}", hint=exc.hint, reference=text,
                                    reason=exc.reason) from None


def run(args: argparse.Namespace) -> int:
    refuse_skopeo_only(args, "copy")
    options = copy_options(args)
    src_options = side_options(args, "src-")
    dst_options = destination_options(args)
    src_ref = _parsed(args.source, "source")
    dst_ref = _parsed(args.destination, "destination")
    progress = None
    if not args.quiet:
        bar = sys.stderr.isatty() and os.environ.get("TERM") != "dumb"  # a dumb terminal has no cursor control
        progress = BarProgress(sys.stderr) if bar else LineProgress(sys.stderr)
    result = copy_image(
        src_ref,
        dst_ref,
        src_options=src_options,
        dst_options=dst_options,
        options=options,
        progress=progress,
    )
    if args.digestfile:
        with open(args.digestfile, "w", encoding="utf-8") as out:
            out.write(result.manifest_digest)
    return 0
