"""The copy pipeline every transport plugs into: verified, parallel, bounded-memory, committed atomically."""

from __future__ import annotations

import hashlib
import io
import tempfile
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, Callable, TypeVar

from labcheck.engine.archive.compression import GZIP, Compressor, DecompressingReader
from labcheck.engine.base.errors import InvalidReferenceError, RegistryError, UnsupportedError, in_context
from labcheck.engine.base.interfaces import (
    COMPRESS,
    DECOMPRESS,
    BlobInfo,
    ImageDestination,
    ImageSource,
    ProgressEvent,
)
from labcheck.engine.base.options import CopyOptions, SideOptions
from labcheck.engine.format import imageconfig
from labcheck.engine.format.digest import VerifyingReader, sha256_digest
from labcheck.engine.format.manifest import (
    DOCKER_V2S2,
    FORMATS,
    LAYER_COMPRESSION,
    LIST_TYPES,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    V2S1_TYPES,
    ImageManifest,
    ManifestList,
    convert_manifest,
    image_type_for,
    layer_media_type,
    list_type_for,
    parse_manifest,
    serialize_list,
)
from labcheck.engine.format.resolve import choose_from_list, get_instance_manifest, read_config
from labcheck.engine.fsio import tmpdir
from labcheck.engine.fsio.chunks import iter_chunks
from labcheck.engine.policy import Policy
from labcheck.engine.transports import open_destination, open_source
from labcheck.errors import LabcheckError

ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class CopyResult:
    """What was written at the top level of the destination."""

    manifest_digest: str
    manifest: bytes
    media_type: str


# How long an interrupted copy waits for its running blob copies to stop.
INTERRUPT_GRACE = 5.0

T = TypeVar("T")


class _Cancelled(Exception):
    """Raised inside a blob copy when a sibling copy failed."""


def copy_image(
    src_ref: Any,
    dst_ref: Any,
    *,
    src_options: SideOptions | None = None,
    dst_options: SideOptions | None = None,
    options: CopyOptions | None = None,
    progress: ProgressCallback | None = None,
) -> CopyResult:
    """Copy the image src_ref names to dst_ref (references as reference.py parses them)."""
    src_options = src_options or SideOptions()
    dst_options = dst_options or SideOptions()
    options = options or CopyOptions()
    policy = None if options.insecure_policy else Policy.load(options.policy)
    source = _initializing("source", src_ref, lambda: open_source(src_ref, src_options))
    try:
        if policy is not None:
            policy.check(src_ref)
        destination = _initializing("destination", dst_ref, lambda: open_destination(dst_ref, dst_options))
        try:
            return copy_between(
                source,
                destination,
                src_options=src_options,
                options=options,
                progress=progress,
                dest_transport=dst_ref.transport,
                source_name=str(src_ref),
            )
        finally:
            destination.close()
    finally:
        source.close()


def copy_between(
    source: ImageSource,
    destination: ImageDestination,
    *,
    src_options: SideOptions | None = None,
    options: CopyOptions | None = None,
    progress: ProgressCallback | None = None,
    dest_transport: str = "",
    source_name: str = "",
) -> CopyResult:
    """Copy from an open source to an open destination and commit it. The caller closes both.
    dest_transport and source_name (`transport:reference`) word errors as skopeo does."""
    copier = _Copier(source, destination, src_options or SideOptions(), options or CopyOptions(), progress)
    copier.dest_transport = dest_transport
    copier.source_name = source_name
    result = copier.run()
    destination.commit()
    return result


class _Copier:
    def __init__(
        self,
        source: ImageSource,
        destination: ImageDestination,
        src_options: SideOptions,
        options: CopyOptions,
        progress: ProgressCallback | None,
    ) -> None:
        self.source = source
        self.dest = destination
        self.src_options = src_options
        self.options = options
        self._progress = progress
        self._lock = threading.Lock()
        self._written: set[str] = set()
        self._cancel = threading.Event()
        self.dest_transport = ""  # skopeo's name of the destination's transport, for messages
        self.source_name = ""  # the source's transport:reference, for messages
        self._stored_as: dict[str, BlobInfo] = {}  # layers the destination stored in another form (decompressed)
        if options.manifest_format and options.manifest_format not in FORMATS:
            raise LabcheckError(f"unknown format {options.manifest_format!r}", hint="use oci, v2s2 or v2s1")

    def emit(self, kind: str, digest: str = "", size: int = -1, done: int = 0, **extra: int) -> None:
        if self._progress is not None:
            with self._lock:
                self._progress(ProgressEvent(kind, digest, size, done, **extra))

    # --- top level -----------------------------------------------------------------------------

    def run(self) -> CopyResult:
        raw, media_type = self.source.get_manifest()
        parsed = parse_manifest(raw, media_type)
        media_type = media_type or parsed.media_type
        if isinstance(parsed, ManifestList):
            if self.options.index_only:
                return self._copy_list(raw, parsed, images=False)
            if self.options.all_images:
                return self._copy_list(raw, parsed)
            _, instance_raw, instance_type = choose_from_list(
                self.source, parsed, self.src_options,
                context=f"choosing an image from manifest list {self.source_name}".rstrip(),
            )
            self.dest.set_toplevel_manifest(raw, media_type)
            raw, media_type = instance_raw, instance_type
        new_raw, new_type = self._copy_single(raw, media_type, top_level=True)
        return CopyResult(sha256_digest(new_raw), new_raw, new_type)

    def _copy_list(self, raw: bytes, listing: ManifestList, *, images: bool = True) -> CopyResult:
        """The list and (unless images is False: --multi-arch index-only) every image it names."""
        list_target = self._list_target(listing.media_type)
        count = len(listing.instances) if images else 0
        self.emit("list-start", total=count)
        updated = [] if images else list(listing.instances)
        for i, inst in enumerate(listing.instances[:count], 1):
            self.emit("image", inst.digest, index=i, total=count)
            inst_raw, inst_type = get_instance_manifest(self.source, inst)
            forced = image_type_for(list_target) if list_target != listing.media_type else None
            new_raw, new_type = self._copy_single(inst_raw, inst_type, top_level=False, forced=forced)
            updated.append(replace(inst, digest=sha256_digest(new_raw), size=len(new_raw), media_type=new_type))
        if list_target == listing.media_type and updated == listing.instances:
            new_list = raw
        else:
            new_list = serialize_list(replace(listing, instances=updated), list_target)
        self.emit("list-manifest")
        self.dest.put_manifest(new_list, list_target)
        self.emit("list-done")
        return CopyResult(sha256_digest(new_list), new_list, list_target)

    def _list_target(self, list_type: str) -> str:
        supported = self.dest.supported_manifest_types()
        if supported and not any(candidate in LIST_TYPES for candidate in supported):
            # skopeo checks this first, whatever --format says
            raise UnsupportedError(
                f'copying multiple images: destination transport "{self.dest_transport}" does not support '
                "copying multiple images as a group",
                hint="copy one image (without --all)",
            )
        if self.options.manifest_format and not self.options.preserve_digests:
            return list_type_for(FORMATS[self.options.manifest_format])
        if not supported or list_type in supported or self.options.preserve_digests:
            return list_type
        for candidate in supported:
            if candidate in LIST_TYPES:
                return candidate
        raise UnsupportedError(f"the destination does not accept manifest lists ({list_type})")

    def _image_target(self, media_type: str) -> str:
        if self.options.preserve_digests:
            return media_type  # skopeo then writes the manifest as it is, whatever --format says
        supported = self.dest.supported_manifest_types()
        if self.options.manifest_format:
            wanted = FORMATS[self.options.manifest_format]
            if supported and wanted not in supported:
                raise UnsupportedError(f"the destination does not accept manifest type {wanted}")
            return wanted
        if not supported or media_type in supported:
            return media_type
        for candidate in supported:
            if candidate in (OCI_MANIFEST, DOCKER_V2S2):
                return candidate
        raise UnsupportedError(f"the destination accepts none of the manifest types we can write: {supported}")

    # --- one image -------------------------------------------------------------------------------

    def _copy_single(
        self, raw: bytes, media_type: str, *, top_level: bool, forced: str | None = None
    ) -> tuple[bytes, str]:
        manifest = parse_manifest(raw, media_type)
        if not isinstance(manifest, ImageManifest):
            raise UnsupportedError("a list nested in a list is not supported")
        media_type = manifest.media_type
        target = forced or self._image_target(media_type)
        if target != media_type and (media_type in V2S1_TYPES or target in V2S1_TYPES):
            raise UnsupportedError(
                f"converting {media_type} to {target} is not supported",
                hint="schema1 images can be copied unchanged, e.g. to dir:",
            )
        layers_changed = False
        updated = self.source.layer_infos_for_copy(sha256_digest(raw))
        if updated is not None and updated != manifest.layers:
            manifest, layers_changed = replace(manifest, layers=updated), True
        self.emit("start")
        self._copy_layers(manifest.layers)
        if any(layer.digest in self._stored_as for layer in manifest.layers):
            # as skopeo does, the manifest names the layers as the destination stored them (docker-archive:
            # tars, compressed or decompressed layers)
            target = self._target_for_layers(manifest, target, forced)
            manifest = replace(manifest, layers=[self._stored_as.get(layer.digest, layer) for layer in manifest.layers])
            layers_changed = True
        if layers_changed and self.options.preserve_digests:
            raise UnsupportedError("Instructed to preserve digests, but the layers must be changed for this copy",
                                   hint="copy without --preserve-digests")
        new_config = manifest.config
        if manifest.config is not None:
            config_info = manifest.config
            config = self._retrying(config_info.digest, lambda: read_config(self.source, config_info))
            if target == OCI_MANIFEST and media_type != OCI_MANIFEST:
                config = imageconfig.to_oci_config(config)
                new_config = BlobInfo(sha256_digest(config), len(config), manifest.config.media_type)
            assert new_config is not None
            self.emit("config", new_config.digest, len(config))
            if new_config.digest not in self._written:
                self.dest.put_blob(io.BytesIO(config), new_config)
                self._written.add(new_config.digest)
        unchanged = target == media_type and not layers_changed
        new_raw = raw if unchanged else convert_manifest(manifest, target, new_config)
        self.emit("manifest")
        self.dest.put_manifest(new_raw, target, None if top_level else sha256_digest(new_raw))
        self.emit("done")
        return new_raw, target

    def _target_for_layers(self, manifest: ImageManifest, target: str, forced: str | None) -> str:
        """target, or OCI when zstd layers cannot be named in it and the destination takes OCI
        (containers/image tries the next manifest type); skopeo's error when neither works."""
        zstd = [layer for layer in manifest.layers if self._stored_as.get(layer.digest, layer).media_type == OCI_LAYER_ZSTD
                and layer.media_type != OCI_LAYER_ZSTD]
        if not zstd or target == OCI_MANIFEST:
            return target
        if not forced and not self.options.manifest_format and OCI_MANIFEST in self.dest.supported_manifest_types():
            return OCI_MANIFEST
        first = zstd[0]
        raise UnsupportedError(
            f'creating an updated image manifest: preparing updated manifest, layer "{self._stored_as[first.digest].digest}": '
            f'zstd compression is not supported for type "{first.media_type}"',
            hint="zstd layers need an OCI manifest: add --format oci",
        )

    def _copy_layers(self, layers: list[BlobInfo]) -> None:
        unique: dict[str, BlobInfo] = {}
        for layer in layers:
            unique.setdefault(layer.digest, layer)
        workers = max(1, self.options.image_parallel_copies or 6)
        if self.dest.writes_blobs_in_order():
            workers = 1
        for info in unique.values():
            self.emit("blob", info.digest, info.size)  # in manifest order, as skopeo prints them
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="labcheck-blob")
        futures = [pool.submit(self._copy_blob, info) for info in unique.values()]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): running copies stop at their next chunk and remove their
            # temporary files. One blocked in a read that never returns is not waited for: the
            # destination's close() removes its file, and the interrupted process does not wait for it.
            self._cancel.set()
            wait(futures, timeout=INTERRUPT_GRACE)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        failed = [f for f in done if f.exception() is not None]
        if failed:
            self._cancel.set()
        pool.shutdown(wait=True)
        if failed:
            errors = [f.exception() for f in futures if f.exception() is not None]
            raise next((e for e in errors if not isinstance(e, _Cancelled)), errors[0])  # type: ignore[misc]

    def _copy_blob(self, info: BlobInfo) -> None:
        if self._cancel.is_set():
            raise _Cancelled()
        if info.digest in self._written or self._reusable(info):
            self.emit("blob-skipped", info.digest, info.size)
            return
        self._retrying(info.digest, lambda: self._stream_blob(info))
        with self._lock:
            self._written.add(info.digest)
        self.emit("blob-done", info.digest, info.size, info.size)

    def _reusable(self, info: BlobInfo) -> bool:
        try:
            return self.dest.try_reusing_blob(info, source_repository=self.source.repository_name())
        except LabcheckError as exc:
            raise in_context(exc, f"trying to reuse blob {info.digest} at destination") from exc

    def _layer_change(self, info: BlobInfo) -> str | None:
        """The compression a layer is rewritten in ("" to decompress it), or None to copy it as it is;
        containers/image's choice from the destination's desired compression and --dest-compress-format."""
        if self.options.preserve_digests or info.media_type not in LAYER_COMPRESSION:
            return None
        current = LAYER_COMPRESSION[info.media_type]
        desired = self.dest.desired_layer_compression()
        wanted = self.options.compress_format
        if desired == COMPRESS and current is None:
            return wanted or GZIP
        if desired == COMPRESS and wanted and current != wanted:
            return wanted
        if desired == DECOMPRESS and current is not None:
            return ""
        return None

    def _retrying(self, digest: str, read: Callable[[], Any]) -> Any:
        """read(), again after a temporary registry failure (a lost connection, a stall), up to
        --retry-times more times: a body that broke halfway cannot be resumed by the request's own retry."""
        attempts = max(0, self.src_options.retry_times) + 1
        for attempt in range(attempts):
            try:
                return read()
            except RegistryError as exc:
                if not exc.temporary or attempt + 1 == attempts or self._cancel.is_set():
                    raise
                self.emit("blob-retry", digest, index=attempt + 1)
                time.sleep(min(self.src_options.retry_delay * 2**attempt, 30))
        raise AssertionError("unreachable")

    def _stream_blob(self, info: BlobInfo) -> None:
        stream, size = self.source.get_blob(info)
        total = info.size if info.size >= 0 else size

        def on_read(done: int) -> None:
            if self._cancel.is_set():
                raise _Cancelled()
            self.emit("blob-progress", info.digest, total, done)

        reader = VerifyingReader(stream, info.digest, what="blob", on_read=on_read)
        change = self._layer_change(info)
        if change is not None:
            try:
                self._rewrite_layer(reader, info, change)
            finally:
                reader.close()
            return
        try:
            stored = self.dest.put_blob(reader, info)  # type: ignore[arg-type]
            if stored is not None and stored.digest != info.digest:
                with self._lock:
                    self._stored_as[info.digest] = stored
            if not reader.verified:
                reader.drain()
        finally:
            reader.close()

    def _rewrite_layer(self, reader: VerifyingReader, info: BlobInfo, compression: str) -> None:
        """Store a layer (de/re)compressed: spooled to a temporary file first, so its new digest is
        known before the destination is asked for it (skopeo's --dest-precompute-digests, always)."""
        plain: Any = DecompressingReader(reader) if LAYER_COMPRESSION[info.media_type] else reader  # type: ignore[arg-type]
        compressor = Compressor(compression, self.options.compress_level) if compression else None
        with tempfile.TemporaryFile(prefix="labcheck-layer-", dir=tmpdir.big_files_dir()) as spool:
            digest, size = hashlib.sha256(), 0
            for chunk in iter_chunks(plain):
                out = compressor.compress(chunk) if compressor else chunk
                spool.write(out)
                digest.update(out)
                size += len(out)
            if compressor is not None:
                out = compressor.flush()
                spool.write(out)
                digest.update(out)
                size += len(out)
            if not reader.verified:
                reader.drain()
            new = BlobInfo("sha256:" + digest.hexdigest(), size, layer_media_type(info.media_type, compression or None),
                           info.annotations)
            with self._lock:
                self._stored_as[info.digest] = new
                seen = new.digest in self._written
            if seen or self.dest.try_reusing_blob(new, source_repository=None):
                return
            spool.seek(0)
            stored_reader = VerifyingReader(spool, new.digest, what="blob")  # type: ignore[arg-type]
            self.dest.put_blob(stored_reader, new)  # type: ignore[arg-type]
            if not stored_reader.verified:
                stored_reader.drain()
            with self._lock:
                self._written.add(new.digest)


def _initializing(side: str, ref: Any, opener: Callable[[], T]) -> T:
    """opener(), its errors in containers/image's context (`initializing source REF: …`); an invalid
    reference stays as it is, as skopeo prints it."""
    try:
        return opener()
    except InvalidReferenceError:
        raise
    except LabcheckError as exc:
        raise in_context(exc, f"initializing {side} {ref}") from exc
