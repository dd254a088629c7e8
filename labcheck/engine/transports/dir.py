"""The dir: transport: an image as plain files in a directory, laid out as skopeo 1.9 does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from labcheck.engine.base.errors import ImageNotFoundError, InvalidReferenceError, UsageError
from labcheck.engine.base.interfaces import (
    COMPRESS,
    DECOMPRESS,
    PRESERVE,
    BlobInfo,
    DestinationDefaults,
    SourceDefaults,
)
from labcheck.engine.base.options import SideOptions
from labcheck.engine.format.digest import digest_hex
from labcheck.engine.format.manifest import guess_media_type
from labcheck.engine.format.resolve import open_blob_file
from labcheck.engine.fsio import atomicfile
from labcheck.engine.reference.refs import DirReference
from labcheck.errors import LabcheckError

VERSION = b"Directory Transport Version: 1.1\n"


class NotAnImageDirectoryError(LabcheckError):
    """A non-empty directory that holds something other than a dir: image; skopeo will not overwrite it."""


def _manifest_name(instance_digest: str | None) -> str:
    return "manifest.json" if instance_digest is None else f"{digest_hex(instance_digest)}.manifest.json"


class DirImageSource(SourceDefaults):
    """Reads an image from a dir: layout."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def get_manifest(self, instance_digest: str | None = None) -> tuple[bytes, str]:
        file = self.path / _manifest_name(instance_digest)
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise ImageNotFoundError(
                f"Error retrieving manifest for image: open {file}: no such file or directory",
                hint=f"{self.path} holds no dir: image",
            ) from None
        return data, guess_media_type(data)

    def get_blob(self, info: BlobInfo) -> tuple[BinaryIO, int]:
        return open_blob_file(self.path / digest_hex(info.digest), info.digest)

    def close(self) -> None:
        pass


class DirImageDestination(DestinationDefaults):
    """Writes an image into a dir: layout; the previous content stays valid until commit().

    durable=False (a spool another tool reads and we delete) writes without fsync.
    """

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True, compress: bool = False,
                 decompress: bool = False) -> None:
        self.path = Path(path)
        self._durable = durable
        if compress and decompress:
            raise UsageError("Cannot compress and decompress at the same time",
                             hint="give one of --dest-compress and --dest-decompress")
        self._compression = COMPRESS if compress else DECOMPRESS if decompress else PRESERVE
        self._created_dirs: list[Path] = []
        self._new_files: list[Path] = []
        self._written: set[str] = set()
        self._manifest: bytes | None = None
        self._committed = False
        if not self.path.parent.is_dir():
            reason = f"lstat {self.path.parent}: no such file or directory"
            raise InvalidReferenceError(f"Invalid destination name dir:{path}: {reason}", reason=reason,
                                        reference=f"dir:{path}", hint="dir: destinations need their parent directory to exist")
        if self.path.exists() and not self.path.is_dir():
            raise NotAnImageDirectoryError(f"{self.path} exists and is not a directory")
        # One writer at a time (commit removes what this copy did not write, another copy's files too).
        self._lock = atomicfile.DirectoryLock(self.path)
        self._created_dirs = self._lock.created
        try:
            # What a killed copy left does not make a directory someone else's; it goes once checked.
            if any(not atomicfile.is_temp_name(entry.name) for entry in self.path.iterdir()):
                version = self.path / "version"
                if not version.is_file() or version.read_bytes() != VERSION:
                    raise NotAnImageDirectoryError(
                        "not a containers image directory, don't want to overwrite important data",
                        hint="choose an empty or new directory",
                    )
            atomicfile.remove_stale_temps(self.path)
            if not (self.path / "version").is_file():
                # First, as skopeo does: what a killed copy leaves is then recognisably an image directory,
                # which the next copy into it may take over.
                self._write("version", data=VERSION)
        except BaseException:
            self.close()
            raise

    def supported_manifest_types(self) -> list[str]:
        return []

    def desired_layer_compression(self) -> str:
        return self._compression

    def _write(self, name: str, stream: BinaryIO | None = None, data: bytes | None = None) -> int:
        content = stream if stream is not None else data
        assert content is not None
        size = atomicfile.write_recording_new(self.path / name, content, self._new_files, durable=self._durable)
        self._written.add(name)
        return size

    def put_blob(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        size = self._write(digest_hex(info.digest), stream=stream)
        return BlobInfo(info.digest, size, info.media_type, info.annotations)

    def put_manifest(self, manifest: bytes, media_type: str, instance_digest: str | None = None) -> None:
        if instance_digest is None:
            self._manifest = manifest
        else:
            self._write(_manifest_name(instance_digest), data=manifest)

    def commit(self) -> None:
        if self._manifest is None:
            raise LabcheckError("internal error: commit() before the manifest was written")
        if "version" not in self._written:
            self._write("version", data=VERSION)
        self._write("manifest.json", data=self._manifest)
        if self._durable:
            atomicfile.fsync_dir(self.path)
        self._committed = True
        # Only one image per directory, as skopeo: what the previous image left goes now.
        for entry in self.path.iterdir():
            if entry.name not in self._written:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    def close(self) -> None:
        if not self._committed:
            # Under the lock every temporary file here is this copy's: an interrupted blob copy may
            # not have removed its own yet.
            atomicfile.remove_stale_temps(self.path)
            atomicfile.remove_created(self._new_files, self._created_dirs)
            self._new_files = []
        self._lock.release()


class DirTransport:
    """The dir: transport: one image as loose files in a directory."""

    name = "dir"

    def open_source(self, ref: DirReference, options: SideOptions | None = None) -> DirImageSource:
        return DirImageSource(ref.path)

    def open_destination(self, ref: DirReference, options: SideOptions | None = None) -> DirImageDestination:
        options = options or SideOptions()
        return DirImageDestination(ref.path, compress=options.compress, decompress=options.decompress)


TRANSPORT = DirTransport()
