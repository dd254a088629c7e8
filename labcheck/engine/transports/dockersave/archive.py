"""docker-archive: — an image in a `docker save` tar file, read and written as skopeo 1.9 does."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from labcheck.engine.archive.compression import DecompressingReader, DigestingReader, detect
from labcheck.engine.archive.tarwriter import SeekableTarWriter
from labcheck.engine.base.errors import DigestMismatchError, ImageNotFoundError, UnsupportedError, UsageError
from labcheck.engine.base.interfaces import BlobInfo, DestinationDefaults
from labcheck.engine.base.options import SideOptions
from labcheck.engine.format.manifest import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_V2S2,
    OCI_CONFIG,
    ImageManifest,
    parse_manifest,
)
from labcheck.engine.format.resolve import MAX_SMALL_BLOB
from labcheck.engine.fsio import atomicfile, tmpdir
from labcheck.engine.reference.names import DockerName, parse_docker_name
from labcheck.engine.reference.refs import DockerArchiveReference
from labcheck.engine.transports.dockersave.reader import (
    MANIFEST_FILE,
    MAX_MANIFEST_SIZE,
    ArchiveFormatError,
    ArchiveImageSource,
    Catalog,
    Member,
    build_image,
    choose_item,
    diff_ids_of,
    parse_manifest_json,
)
from labcheck.engine.transports.dockersave.writer import ArchiveWriter
from labcheck.errors import LabcheckError

CONFIG_TYPES = (DOCKER_CONFIG, OCI_CONFIG)


class _Bounded:
    """The `size` bytes of a file starting at `offset`."""

    def __init__(self, file: BinaryIO, offset: int, size: int) -> None:
        file.seek(offset)
        self._file = file
        self._left = size

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(n)
        if not data:
            raise ArchiveFormatError("unexpected end of the archive")
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


class ArchiveFile:
    """A seekable, uncompressed `docker save` archive on disk and its checked catalog."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._temp: Path | None = None
        try:
            with open(self.path, "rb") as probe:
                compressed = detect(probe.read(6)) is not None
        except FileNotFoundError:
            raise ImageNotFoundError(f'opening file "{path}": open {path}: no such file or directory') from None
        except IsADirectoryError:
            raise ArchiveFormatError(f"{path} is a directory, not a docker-archive tar file") from None
        if compressed:
            self.path = self._temp = self._decompressed_copy(self.path)
        try:
            self.catalog = self._scan()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _decompressed_copy(path: Path) -> Path:
        # As containers/image: a compressed archive is read from a decompressed temporary copy.
        fd, tmp = tempfile.mkstemp(prefix="labcheck-docker-tar-", dir=tmpdir.big_files_dir())
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as raw:
                shutil.copyfileobj(DecompressingReader(raw), out, 1 << 20)  # type: ignore[misc]
        except BaseException:
            os.unlink(tmp)
            raise
        return Path(tmp)

    def _scan(self) -> Catalog:
        catalog = Catalog()
        try:
            with tarfile.open(self.path, "r:") as tar:
                for info in tar:
                    catalog.add(info)
        except tarfile.TarError as exc:
            raise ArchiveFormatError(f"{self.path} is not a tar archive: {exc}") from None
        return catalog

    def open_member(self, path: str) -> BinaryIO:
        member = self.catalog.resolve(path)
        return _Bounded(open(self.path, "rb"), member.offset, member.size)  # type: ignore[return-value]

    def read_small(self, member: Member, limit: int) -> bytes:
        if member.size > limit:
            raise ArchiveFormatError(f"{member.path} is larger than {limit} bytes")
        stream = self.open_member(member.path)
        try:
            return stream.read()
        finally:
            stream.close()

    def uncompressed_size(self, member: Member) -> int:
        """The member's size, or for a compressed layer its decompressed size (what get_blob hands out)."""
        stream = self.open_member(member.path)
        try:
            if detect(stream.read(6)) is None:
                return member.size
        finally:
            stream.close()
        decompressed = DecompressingReader(self.open_member(member.path))
        try:
            size = 0
            while chunk := decompressed.read(1 << 20):
                size += len(chunk)
            return size
        finally:
            decompressed.close()

    def close(self) -> None:
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None


def open_archive_image(archive: ArchiveFile, named: DockerName | None, source_index: int | None) -> ArchiveImageSource:
    """The image of an archive that (named, source_index) selects, as an ImageSource."""
    items = parse_manifest_json(archive.read_small(archive.catalog.resolve(MANIFEST_FILE), MAX_MANIFEST_SIZE))
    item = choose_item(items, named, source_index)
    image = build_image(archive.catalog, item, archive.read_small, archive.uncompressed_size)
    return ArchiveImageSource(image, archive.open_member, archive.close)


class ArchiveBlobs(DestinationDefaults):
    """What the docker-archive and docker-daemon destinations share: an ArchiveWriter fed configs and layers."""

    _writer: ArchiveWriter
    _layers: dict[str, tuple[str, int]]  # the digest a copy names a layer by -> (diffID, size)
    _configs: dict[str, bytes]

    def supported_manifest_types(self) -> list[str]:
        return [DOCKER_V2S2]

    def writes_blobs_in_order(self) -> bool:
        return True  # a tar written as it goes; skopeo's order of layers makes the archive's bytes

    def try_reusing_blob(self, info: BlobInfo, *, source_repository: str | None = None) -> bool:
        return info.digest in self._layers or info.digest in self._configs

    def _put_config(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        data = stream.read(MAX_SMALL_BLOB + 1)
        if len(data) > MAX_SMALL_BLOB or stream.read(1):
            raise LabcheckError(f"config {info.digest} is larger than {MAX_SMALL_BLOB} bytes")
        self._writer.add_config(info.digest, data)
        self._configs[info.digest] = data
        return BlobInfo(info.digest, len(data), info.media_type)

    def _image_of(self, manifest: bytes, media_type: str, instance_digest: str | None) -> tuple[ImageManifest, bytes]:
        """The Docker schema 2 manifest being written and its config, which must have been written before it."""
        if instance_digest is not None:
            raise UnsupportedError("Manifest lists are not supported for docker tar files")
        parsed = parse_manifest(manifest, media_type)
        if not isinstance(parsed, ImageManifest) or parsed.media_type != DOCKER_V2S2 or parsed.config is None:
            raise UnsupportedError("Unsupported manifest type, need a Docker schema 2 manifest")
        config = self._configs.get(parsed.config.digest)
        if config is None:
            raise LabcheckError(f"internal error: config {parsed.config.digest} was not written before the manifest")
        return parsed, config


class ArchiveDestination(ArchiveBlobs):
    """Writes one image into a new docker-archive file: a temp file in the same directory, renamed at commit()."""

    def __init__(self, path: str | os.PathLike[str], named: DockerName | None,
                 additional_tags: tuple[DockerName, ...] = ()) -> None:
        self.path = Path(path)
        self.named = named
        self.repo_tags = ([named] if named else []) + list(additional_tags)
        if not self.path.parent.is_dir():
            raise LabcheckError(f'opening file "{path}": open {path}: no such file or directory',
                                hint="docker-archive destinations need their directory to exist")
        if self.path.exists():
            if not self.path.is_file():
                raise UnsupportedError(f"{path} is not a regular file; docker-archive writes regular files only")
            if self.path.stat().st_size != 0:
                raise LabcheckError("docker-archive doesn't support modifying existing images",
                                    hint=f"remove {path} first, or choose a new file name")
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name[:16]}.", suffix=".tmp")
        self._tmp = Path(tmp)
        self._file = os.fdopen(fd, "w+b")
        self._writer = ArchiveWriter(SeekableTarWriter(self._file))
        self._layers: dict[str, tuple[str, int]] = {}  # digest the copy named a layer by -> (diffID, size)
        self._configs: dict[str, bytes] = {}
        self._committed = False

    def put_blob(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        if info.media_type in CONFIG_TYPES:
            return self._put_config(stream, info)
        # skopeo asks for decompressed layers here: the archive names each by its diffID.
        uncompressed = DigestingReader(DecompressingReader(stream))  # type: ignore[arg-type]
        diff_id, size = self._writer.add_unsized_layer(uncompressed, lambda: uncompressed.digest)  # type: ignore[arg-type]
        self._layers[info.digest] = self._layers[diff_id] = (diff_id, size)  # the manifest may name either
        return BlobInfo(diff_id, size, DOCKER_LAYER)

    def put_manifest(self, manifest: bytes, media_type: str, instance_digest: str | None = None) -> None:
        parsed, config = self._image_of(manifest, media_type, instance_digest)
        assert parsed.config is not None  # _image_of refuses a manifest without one
        self._writer.add_image(verified_diff_ids(parsed, config, self._layers), parsed.config.digest, config,
                               self.repo_tags)

    def commit(self) -> None:
        self._writer.close()
        self._file.flush()
        os.fchmod(self._file.fileno(), atomicfile.FILE_MODE)
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)
        atomicfile.fsync_dir(self.path.parent)
        self._committed = True

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if not self._committed:
            self._tmp.unlink(missing_ok=True)


def verified_diff_ids(manifest: ImageManifest, config: bytes, layers: dict[str, tuple[str, int]]) -> list[str]:
    """The diffIDs of manifest's layers as written, checked against the config's rootfs.diff_ids."""
    expected = diff_ids_of(config, manifest.config.digest if manifest.config else "config")
    if len(expected) != len(manifest.layers):
        raise LabcheckError(
            f"Inconsistent layer count: {len(manifest.layers)} in manifest, {len(expected)} in config")
    written = []
    for layer, want in zip(manifest.layers, expected):
        if layer.digest not in layers:
            raise LabcheckError(f"internal error: layer {layer.digest} was not written before the manifest")
        got = layers[layer.digest][0]
        if got != want:
            raise DigestMismatchError(want, got, what=f"diffID of layer {layer.digest}")
        written.append(got)
    return written


class DockerArchiveTransport:
    """The docker-archive: transport: a docker save tar file."""

    name = "docker-archive"

    def open_source(self, ref: DockerArchiveReference, options: SideOptions | None = None) -> ArchiveImageSource:
        archive = ArchiveFile(ref.path)
        try:
            return open_archive_image(archive, ref.named, ref.source_index)
        except BaseException:
            archive.close()
            raise

    def open_destination(self, ref: DockerArchiveReference, options: SideOptions | None = None) -> ArchiveDestination:
        if ref.source_index is not None:
            raise LabcheckError(f"Destination reference must not contain a manifest index @{ref.source_index}")
        options = options or SideOptions()
        return ArchiveDestination(ref.path, ref.named, tuple(tagged_name(tag) for tag in options.additional_tags))


def tagged_name(text: str) -> DockerName:
    """An --additional-tag: a name with a tag, as skopeo requires."""
    named = parse_docker_name(text)
    if not named.tag or named.digest:
        raise UsageError(f"additional-tag '{text}' must be a tagged reference", hint="e.g. --additional-tag fedora:mine")
    return named


TRANSPORT = DockerArchiveTransport()
