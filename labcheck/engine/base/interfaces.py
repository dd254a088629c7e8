"""The contract every transport implements: image sources, destinations and blob descriptors.

Modelled on containers/image's ImageSource / ImageDestination, so that copy.py is the one
pipeline every transport plugs into. Optional capabilities are methods
with defaults in SourceDefaults / DestinationDefaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable

# What a destination wants done to layers (desired_layer_compression).
PRESERVE = "preserve"
COMPRESS = "compress"
DECOMPRESS = "decompress"


@dataclass(frozen=True)
class BlobInfo:
    """A blob as a manifest names it. size is -1 when unknown."""

    digest: str
    size: int = -1
    media_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


class ImageSource(Protocol):
    """Where images are read from (containers/image's ImageSource)."""

    def get_manifest(self, instance_digest: str | None = None) -> tuple[bytes, str]:
        """The manifest bytes exactly as stored, and their media type.

        With instance_digest, the manifest of that instance of a list/index.
        """

    def get_blob(self, info: BlobInfo) -> tuple[BinaryIO, int]:
        """An open stream of the blob's bytes and its size (-1 if unknown). Caller closes it."""

    def repository_name(self) -> str | None:
        """`host/path` of the registry repository the blobs come from (for cross-repository
        mounts); None for everything but a registry."""

    def layer_infos_for_copy(self, manifest_digest: str) -> list[BlobInfo] | None:
        """The layers as they are copied, when not as the manifest names them (containers-storage:
        serves the uncompressed diffs, and the copy rewrites the manifest, as skopeo does); None: as named."""

    def close(self) -> None: ...


class ImageDestination(Protocol):
    """Where images are written (containers/image's ImageDestination). Nothing is visible as a
    complete image before commit()."""

    def supported_manifest_types(self) -> list[str]:
        """Media types this destination accepts, preferred first; empty means any."""

    def desired_layer_compression(self) -> str:
        """PRESERVE, COMPRESS or DECOMPRESS: what this destination wants done to layers on the way
        (containers/image's DesiredLayerCompression; the copy does it)."""

    def writes_blobs_in_order(self) -> bool:
        """True when blobs must arrive one at a time in manifest order (a tar is written as it
        goes, and skopeo's order makes its bytes); False lets the copy upload them side by side."""

    def try_reusing_blob(self, info: BlobInfo, *, source_repository: str | None = None) -> bool:
        """True when the destination already has the blob, or got it without an upload (a mount
        from source_repository); then put_blob is not called for it."""

    def put_blob(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        """Store a blob from stream. info.digest is the expected digest (verified by the
        caller's verifying reader); returns what was stored."""

    def set_toplevel_manifest(self, manifest: bytes, media_type: str) -> None:
        """The list the copied instance was chosen from (containers-storage: keeps it too)."""

    def put_manifest(self, manifest: bytes, media_type: str, instance_digest: str | None = None) -> None:
        """Store a manifest; with instance_digest, as that instance of a list being written."""

    def commit(self) -> None:
        """Make the written image visible, atomically where the transport allows it."""

    def close(self) -> None:
        """Release resources; without a prior commit(), discard everything written."""


class SourceDefaults:
    """The optional capabilities of an ImageSource, as a source that has none of them answers
    (containers/image's imagesource/stubs); transports override what they offer."""

    def repository_name(self) -> str | None:
        return None

    def layer_infos_for_copy(self, manifest_digest: str) -> list[BlobInfo] | None:
        return None


class DestinationDefaults:
    """The optional capabilities of an ImageDestination, as a destination that has none of them
    answers (containers/image's imagedestination/stubs)."""

    def desired_layer_compression(self) -> str:
        return PRESERVE

    def writes_blobs_in_order(self) -> bool:
        return False

    def try_reusing_blob(self, info: BlobInfo, *, source_repository: str | None = None) -> bool:
        return False

    def set_toplevel_manifest(self, manifest: bytes, media_type: str) -> None:
        return None


@runtime_checkable
class TagLister(Protocol):
    """A source that can list the tags of its repository (docker:// only, as in skopeo)."""

    def list_tags(self) -> list[str]: ...


@dataclass
class ProgressEvent:
    """What the copy pipeline reports while it works; the CLI renders these, the library never prints.

    kind is one of: "start", "blob", "blob-progress", "blob-skipped", "blob-retry" (index: the
    retry's number), "blob-done", "config", "manifest", "done"; copying a whole list adds "list-start" (total), "image" (digest, index,
    total) before each instance, then "list-manifest" and "list-done".
    """

    kind: str
    digest: str = ""
    size: int = -1
    done: int = 0
    index: int = 0
    total: int = 0


