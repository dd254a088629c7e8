"""The contract every transport implements: image sources, destinations and blob descriptors.

Modelled on containers/image's ImageSource / ImageDestination, so that copy.py is the one
pipeline every transport plugs into. Optional capabilities are their own small protocols.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, Protocol, runtime_checkable


@dataclass(frozen=True)
class BlobInfo:
    """A blob as a manifest names it. size is -1 when unknown."""

    digest: str
    size: int = -1
    media_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


class ImageSource(Protocol):
    """Where images are read from."""

    def get_manifest(self, instance_digest: str | None = None) -> tuple[bytes, str]:
        """The manifest bytes exactly as stored, and their media type.

        With instance_digest, the manifest of that instance of a list/index.
        """

    def get_blob(self, info: BlobInfo) -> tuple[BinaryIO, int]:
        """An open stream of the blob's bytes and its size (-1 if unknown). Caller closes it."""

    def close(self) -> None: ...


class ImageDestination(Protocol):
    """Where images are written. Nothing is visible as a complete image before commit()."""

    def supported_manifest_types(self) -> list[str]:
        """Media types this destination accepts, preferred first; empty means any."""

    def put_blob(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        """Store a blob from stream. info.digest is the expected digest (verified by the
        caller's verifying reader); returns what was stored."""

    def put_manifest(self, manifest: bytes, media_type: str, instance_digest: str | None = None) -> None:
        """Store a manifest; with instance_digest, as that instance of a list being written."""

    def commit(self) -> None:
        """Make the written image visible, atomically where the transport allows it."""

    def close(self) -> None:
        """Release resources; without a prior commit(), discard everything written."""


@runtime_checkable
class BlobReuse(Protocol):
    """A destination that can tell it already has a blob (or get it without uploading)."""

    def try_reusing_blob(self, info: BlobInfo, *, source_repository: str | None = None) -> bool: ...


@runtime_checkable
class TagLister(Protocol):
    """A source that can list the tags of its repository."""

    def list_tags(self) -> list[str]: ...


@runtime_checkable
class LayerInfosForCopy(Protocol):
    """A source whose layers are copied in another form than its manifest names (containers-storage:
    serves the uncompressed diffs); the copy then rewrites the manifest with these, as skopeo does."""

    def layer_infos_for_copy(self, manifest_digest: str) -> list[BlobInfo] | None: ...


@runtime_checkable
class ToplevelManifestSink(Protocol):
    """A destination that records the list an instance was chosen from (containers-storage: keeps it too)."""

    def set_toplevel_manifest(self, manifest: bytes, media_type: str) -> None: ...


@dataclass
class ProgressEvent:
    """What the copy pipeline reports while it works; the CLI renders these, the library never prints.

    kind is one of: "start", "blob", "blob-progress", "blob-skipped", "blob-done", "config",
    "manifest", "done"; copying a whole list adds "list-start" (total), "image" (digest, index,
    total) before each instance, then "list-manifest" and "list-done".
    """

    kind: str
    digest: str = ""
    size: int = -1
    done: int = 0
    index: int = 0
    total: int = 0


def iter_chunks(stream: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Read a stream in bounded chunks."""
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return
        yield chunk
