"""Reading one image out of a source: the top-level manifest, the instance chosen for the platform, its config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from labcheck.engine.base.errors import ImageNotFoundError
from labcheck.engine.base.interfaces import BlobInfo, ImageSource
from labcheck.engine.base.options import SideOptions
from labcheck.engine.format.digest import verify_bytes
from labcheck.engine.base.limits import MAX_CONFIG, size_text
from labcheck.engine.format.manifest import ImageManifest, Instance, ManifestList, parse_manifest
from labcheck.engine.format.platform import NoMatchingPlatformError, choose_instance
from labcheck.errors import LabcheckError

MAX_SMALL_BLOB = 64 << 20  # configs and manifests are read whole; anything bigger is not one


@dataclass(frozen=True)
class ResolvedImage:
    top_raw: bytes
    top_media_type: str
    raw: bytes  # the single-image manifest (== top_raw unless top is a list)
    media_type: str
    manifest: ImageManifest
    instance: Instance | None  # the list entry chosen, if top is a list


class BlobTooLargeError(LabcheckError):
    """A blob read whole (a config) that is larger than such a blob may be."""


def read_small_blob(source: ImageSource, info: BlobInfo, *, what: str = "blob", limit: int = MAX_SMALL_BLOB) -> bytes:
    """A whole (small) blob, digest-verified, refused when larger than limit (declared or sent)."""
    too_large = BlobTooLargeError(
        f"{what} {info.digest} is larger than {size_text(limit)}; refusing to read it",
        hint="a source may serve at most that much; it may be corrupted or hostile",
    )
    if info.size > limit:
        raise too_large
    stream, _ = source.get_blob(info)
    data = bytearray()
    try:
        # To the end, however many reads it takes: one read may return less than the rest of the
        # body (a connection cut halfway), and only the next one tells a short body from a lost one.
        while chunk := stream.read(limit + 1 - len(data)):
            data += chunk
            if len(data) > limit:
                raise too_large
    finally:
        stream.close()
    return verify_bytes(bytes(data), info.digest, what=what)


def read_config(source: ImageSource, info: BlobInfo) -> bytes:
    """An image's config, at most MAX_CONFIG bytes (containers/image's limit), digest-verified."""
    return read_small_blob(source, info, what="config", limit=MAX_CONFIG)


def get_instance_manifest(source: ImageSource, instance: Instance) -> tuple[bytes, str]:
    """The manifest of one list entry, verified against the digest the list names it by."""
    raw, media_type = source.get_manifest(instance.digest)
    verify_bytes(raw, instance.digest, what="manifest")
    return raw, media_type or instance.media_type


def choose_from_list(
    source: ImageSource, listing: ManifestList, options: SideOptions, *, context: str
) -> tuple[Instance, bytes, str]:
    """The instance of listing skopeo picks for the options' platform, and its verified manifest.

    context is what containers/image says it was doing, which prefixes the no-match error.
    """
    try:
        chosen = choose_instance(
            listing, arch=options.override_arch, os=options.override_os, variant=options.override_variant
        )
    except NoMatchingPlatformError as exc:
        raise NoMatchingPlatformError(f"{context}: {exc.message}", hint=exc.hint) from None
    raw, media_type = get_instance_manifest(source, chosen)
    return chosen, raw, media_type


def resolve_image(source: ImageSource, options: SideOptions | None = None) -> ResolvedImage:
    """The top manifest and, when it is a list, the instance skopeo would choose for the platform."""
    options = options or SideOptions()
    top_raw, top_type = source.get_manifest()
    parsed = parse_manifest(top_raw, top_type)
    top_type = top_type or parsed.media_type
    if isinstance(parsed, ManifestList):
        chosen, raw, media_type = choose_from_list(source, parsed, options, context="choosing image instance")
        single = parse_manifest(raw, media_type)
        if not isinstance(single, ImageManifest):
            raise LabcheckError(f"instance {chosen.digest} of the list is itself a list")
        return ResolvedImage(top_raw, top_type, raw, single.media_type, single, chosen)
    return ResolvedImage(top_raw, top_type, top_raw, top_type, parsed, None)


def open_blob_file(file: Path, digest: str) -> tuple[BinaryIO, int]:
    """A blob stored as a file of a layout (dir:, oci:), open for reading, and its size."""
    try:
        stream = open(file, "rb")
    except FileNotFoundError:
        raise ImageNotFoundError(f"blob {digest} is missing: open {file}: no such file or directory") from None
    return stream, os.fstat(stream.fileno()).st_size
