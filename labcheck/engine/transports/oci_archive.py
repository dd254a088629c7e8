"""The oci-archive: transport: an OCI image layout in a tar file, read and written as skopeo 1.9 does."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from labcheck.engine.archive import extract, tarwriter
from labcheck.engine.base.errors import ImageNotFoundError
from labcheck.engine.base.interfaces import BlobInfo, DestinationDefaults, SourceDefaults
from labcheck.engine.base.options import SideOptions
from labcheck.engine.fsio import atomicfile
from labcheck.engine.fsio.tmpdir import make_temp_dir, remove_tree
from labcheck.engine.reference.refs import OCIArchiveReference
from labcheck.engine.transports.oci import OCIImageDestination, OCIImageSource
from labcheck.errors import LabcheckError

ARCHIVE_MODE = 0o666  # Go's os.Create, before the umask


class OCIArchiveSource(SourceDefaults):
    """Reads an image from an oci-archive: the tar is extracted (safely) into a temporary layout, as skopeo does."""

    def __init__(self, path: str | os.PathLike[str], image: str = "") -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ImageNotFoundError(
                f"error creating image source: open {self.path}: no such file or directory",
                hint="oci-archive: names an existing tar file",
            )
        self._tmp: Path | None = make_temp_dir("oci-archive-")
        try:
            extract.extract(self.path, self._tmp)
            self._layout = OCIImageSource(self._tmp, image)
        except BaseException:
            remove_tree(self._tmp)
            self._tmp = None
            raise

    def get_manifest(self, instance_digest: str | None = None) -> tuple[bytes, str]:
        return self._layout.get_manifest(instance_digest)

    def get_blob(self, info: BlobInfo) -> tuple[BinaryIO, int]:
        return self._layout.get_blob(info)

    def close(self) -> None:
        self._layout.close()
        remove_tree(self._tmp)
        self._tmp = None


class OCIArchiveDestination(DestinationDefaults):
    """Writes an image as an oci-archive: a temporary layout, tarred at commit() into a temp file renamed into place."""

    def __init__(self, path: str | os.PathLike[str], image: str = "") -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise LabcheckError(
                f"error creating tar file: open {self.path}: no such file or directory",
                hint="oci-archive: destinations need their parent directory to exist",
            )
        if self.path.is_dir():
            raise LabcheckError(f"error creating tar file: open {self.path}: is a directory")
        self._tmp: Path | None = make_temp_dir("oci-archive-")
        self._layout = OCIImageDestination(self._tmp, image, durable=False)  # a spool: the archive is made durable

    def supported_manifest_types(self) -> list[str]:
        return self._layout.supported_manifest_types()

    def desired_layer_compression(self) -> str:
        return self._layout.desired_layer_compression()

    def try_reusing_blob(self, info: BlobInfo, *, source_repository: str | None = None) -> bool:
        return self._layout.try_reusing_blob(info, source_repository=source_repository)

    def put_blob(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        return self._layout.put_blob(stream, info)

    def put_manifest(self, manifest: bytes, media_type: str, instance_digest: str | None = None) -> None:
        self._layout.put_manifest(manifest, media_type, instance_digest)

    def commit(self) -> None:
        self._layout.commit()
        assert self._tmp is not None
        fd, tmp_name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                tarwriter.write_tree(self._tmp, out)
                out.flush()
                os.fchmod(out.fileno(), ARCHIVE_MODE & ~atomicfile._UMASK)
                os.fsync(out.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise
        atomicfile.fsync_dir(self.path.parent)

    def close(self) -> None:
        self._layout.close()
        remove_tree(self._tmp)
        self._tmp = None


class OCIArchiveTransport:
    """The oci-archive: transport: an OCI image layout in a tar file."""

    name = "oci-archive"

    def open_source(self, ref: OCIArchiveReference, options: SideOptions | None = None) -> OCIArchiveSource:
        return OCIArchiveSource(ref.path, ref.image)

    def open_destination(self, ref: OCIArchiveReference, options: SideOptions | None = None) -> OCIArchiveDestination:
        return OCIArchiveDestination(ref.path, ref.image)


TRANSPORT = OCIArchiveTransport()
