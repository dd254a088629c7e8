"""`labcheck copy`: skopeo copy's flags and progress output, on the engine."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from labcheck.commands.imageflags import add_platform_flags, add_side_flags, side_options
from labcheck.commands.progress import BarProgress, LineProgress
from labcheck.engine.copy import copy_image
from labcheck.engine.format.manifest import FORMATS
from labcheck.engine.base.options import CopyOptions
from labcheck.engine.reference.parse import parse_image_reference


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
    add_side_flags(parser, what="both registries")
    add_side_flags(parser, "src-", what="the source registry")
    add_side_flags(parser, "dest-", what="the destination registry")
    add_platform_flags(parser)
    parser.set_defaults(func=run, handle_signals=True)


def run(args: argparse.Namespace) -> int:
    src_ref = parse_image_reference(args.source)
    dst_ref = parse_image_reference(args.destination)
    options = CopyOptions(
        all_images=args.all_images,
        image_parallel_copies=args.image_parallel_copies,
        manifest_format=args.format,
        remove_signatures=args.remove_signatures,
        digestfile=args.digestfile,
    )
    progress = None
    if not args.quiet:
        bar = sys.stderr.isatty() and os.environ.get("TERM") != "dumb"  # a dumb terminal has no cursor control
        progress = BarProgress(sys.stderr) if bar else LineProgress(sys.stderr)
    result = copy_image(
        src_ref,
        dst_ref,
        src_options=side_options(args, "src-"),
        dst_options=side_options(args, "dest-"),
        options=options,
        progress=progress,
    )
    if args.digestfile:
        with open(args.digestfile, "w", encoding="utf-8") as out:
            out.write(result.manifest_digest)
    return 0
