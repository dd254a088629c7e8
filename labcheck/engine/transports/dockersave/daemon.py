"""docker-daemon: — images in a Docker Engine, through `docker save` / `docker load` streams of its API."""

from __future__ import annotations

import tempfile
from typing import BinaryIO

from labcheck.engine.archive.compression import DiffIDTee
from labcheck.engine.archive.tarwriter import TarWriter
from labcheck.engine.base.errors import DigestMismatchError
from labcheck.engine.base.interfaces import BlobInfo
from labcheck.engine.base.options import SideOptions
from labcheck.engine.fsio import tmpdir
from labcheck.engine.reference.refs import DaemonReference
from labcheck.engine.transports.dockersave.archive import CONFIG_TYPES, ArchiveBlobs, verified_diff_ids
from labcheck.engine.transports.dockersave.engine_api import DockerEngine, ImageLoad, docker_host
from labcheck.engine.transports.dockersave.reader import (
    MANIFEST_FILE,
    MAX_MANIFEST_SIZE,
    ArchiveFormatError,
    ArchiveImage,
    ArchiveImageSource,
    Member,
    build_image,
    choose_item,
    parse_manifest_json,
)
from labcheck.engine.transports.dockersave.stream import SequentialMembers, scan_metadata
from labcheck.engine.transports.dockersave.writer import ArchiveWriter
from labcheck.errors import LabcheckError


def _engine(opts: SideOptions | None) -> DockerEngine:
    return DockerEngine(docker_host(opts.daemon_host if opts else None))


class DaemonImageSource(ArchiveImageSource):
    """An image read from the daemon; `layers` tells how its layers came (handed over directly or spooled)."""

    def __init__(self, image: ArchiveImage, layers: SequentialMembers) -> None:
        super().__init__(image, layers.open, layers.close, transport="docker-daemon")
        self.layers = layers


class DaemonDestination(ArchiveBlobs):
    """Streams the image into `POST /images/load` as a docker-archive, layers as they are (skopeo's PreserveOriginal)."""

    def __init__(self, ref: DaemonReference, opts: SideOptions | None) -> None:
        named = ref.named
        if named is None or not named.tag or named.digest:
            raise LabcheckError(
                f"Invalid destination docker-daemon:{ref.string_within_transport()}: a destination must be a name:tag",
                hint="name the image, e.g. docker-daemon:fedora:latest",
            )
        self.named = named
        self._upload: ImageLoad = _engine(opts).load_image()
        self._writer = ArchiveWriter(TarWriter(self._upload))
        self._layers: dict[str, tuple[str, int]] = {}  # compressed digest -> (diffID, size)
        self._configs: dict[str, bytes] = {}
        self._committed = False
        self.messages: list[str] = []

    def put_blob(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        if info.media_type in CONFIG_TYPES:
            return self._put_config(stream, info)
        if info.size < 0:
            return self._put_unsized(stream, info)
        tee = DiffIDTee(stream)
        self._writer.add_layer(info.digest, info.size, tee)  # type: ignore[arg-type]
        self._record(info, *tee.finish())
        return BlobInfo(info.digest, info.size, info.media_type)

    def _put_unsized(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        # A tar header needs the size first: learn it from a temporary copy, as skopeo does.
        with tempfile.TemporaryFile(prefix="labcheck-blob-", dir=tmpdir.big_files_dir()) as spool:
            tee = DiffIDTee(stream)
            while chunk := tee.read(1 << 20):
                spool.write(chunk)
            size = spool.tell()
            spool.seek(0)
            self._writer.add_layer(info.digest, size, spool)  # type: ignore[arg-type]
        self._record(info, *tee.finish())
        return BlobInfo(info.digest, size, info.media_type)

    def _record(self, info: BlobInfo, digest: str, diff_id: str, size: int) -> None:
        if digest != info.digest:
            raise DigestMismatchError(info.digest, digest)
        self._layers[info.digest] = (diff_id, size)

    def put_manifest(self, manifest: bytes, media_type: str, instance_digest: str | None = None) -> None:
        parsed, config = self._image_of(manifest, media_type, instance_digest)
        assert parsed.config is not None  # _image_of refuses a manifest without one
        verified_diff_ids(parsed, config, self._layers)
        self._writer.add_image([layer.digest for layer in parsed.layers], parsed.config.digest, config, [self.named])

    def commit(self) -> None:
        self._writer.close()
        self._committed = True  # from here on the daemon decides; its answer is checked below
        self.messages = self._upload.finish()

    def close(self) -> None:
        if not self._committed:
            self._upload.abort()


class DaemonTransport:
    """The docker-daemon: transport: images in a Docker Engine, through its API socket."""

    name = "docker-daemon"

    def open_source(self, ref: DaemonReference, opts: SideOptions | None = None) -> DaemonImageSource:
        """The image, read from two `docker save` streams: one for its metadata, one for its layers.

        docker writes manifest.json after the layers, so one pass cannot both describe the image and stream
        it; the first pass keeps only small files, the second hands layers over as they pass (see tarstream).
        Both passes name the image by its ID, so they read the same image even if a tag moves meanwhile.
        """
        engine = _engine(opts)
        image_id = str(engine.inspect_image(ref.string_within_transport())["Id"])
        stream = engine.save_image(image_id)
        try:
            catalog, small = scan_metadata(stream)
        finally:
            stream.close()

        def read_small(member: Member, limit: int) -> bytes:
            if member.path not in small or member.size > limit:
                raise ArchiveFormatError(f"{member.path} is larger than {limit} bytes")
            return small[member.path]

        def uncompressed_size(member: Member) -> int:
            return member.uncompressed_size if member.uncompressed_size >= 0 else member.size

        items = parse_manifest_json(read_small(catalog.resolve(MANIFEST_FILE), MAX_MANIFEST_SIZE))
        image = build_image(catalog, choose_item(items, None, None), read_small, uncompressed_size)
        if image.config_digest != image_id:
            raise DigestMismatchError(image_id, image.config_digest, what="image config")
        layers = SequentialMembers(lambda: engine.save_image(image_id), {layer.path for layer in image.layers})
        return DaemonImageSource(image, layers)

    def open_destination(self, ref: DaemonReference, opts: SideOptions | None = None) -> DaemonDestination:
        return DaemonDestination(ref, opts)


TRANSPORT = DaemonTransport()
