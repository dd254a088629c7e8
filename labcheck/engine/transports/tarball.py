"""The tarball: transport: layer tarballs (gzip or plain) made into a one-image OCI source, as skopeo 1.9 reads them.

containers/image's tarball/: every file becomes a layer as it is (a gzip file is a gzip layer, anything
else a plain one), a config and manifest are made up around them (history "imported from tarball",
the host's architecture, the newest file's mtime as creation time). Read only.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time
import zlib
from typing import BinaryIO, NoReturn

from labcheck.engine.base.errors import InvalidReferenceError, UnsupportedError
from labcheck.engine.base.interfaces import BlobInfo, SourceDefaults
from labcheck.engine.base.options import SideOptions
from labcheck.engine.format import gojson
from labcheck.engine.format.digest import sha256_digest
from labcheck.engine.format.madeup import Layer, added_by, config_json, history_entry, manifest_json
from labcheck.engine.format.manifest import OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST
from labcheck.engine.format.platform import host_platform
from labcheck.engine.reference.refs import TarballReference
from labcheck.errors import LabcheckError

STDIN = "-"
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b\x08"
_ZERO_TIME = "0001-01-01T00:00:00Z"


class TarballReadError(LabcheckError):
    """A tarball: file could not be read (or its gzip stream is broken)."""


def _digests(stream: BinaryIO, name: str) -> tuple[str, str, str]:
    """(blob digest, diff ID, media type) of one file: a gzip file is digested as stored and uncompressed."""
    blob_hash = hashlib.sha256()
    chunk = stream.read(_CHUNK)
    if not chunk.startswith(_GZIP_MAGIC):
        while chunk:
            blob_hash.update(chunk)
            chunk = stream.read(_CHUNK)
        digest = "sha256:" + blob_hash.hexdigest()
        return digest, digest, OCI_LAYER
    diff_hash = hashlib.sha256()
    inflater, in_member = zlib.decompressobj(wbits=31), False
    try:
        while chunk:
            blob_hash.update(chunk)
            while chunk:  # a gzip file may hold several members, one after the other (pgzip reads them all)
                diff_hash.update(inflater.decompress(chunk))
                in_member = True
                if not inflater.eof:
                    break
                chunk = inflater.unused_data
                inflater, in_member = zlib.decompressobj(wbits=31), False
            chunk = stream.read(_CHUNK)
    except zlib.error as exc:
        raise TarballReadError(f"error reading {gojson.quote(name)}: {exc}") from None
    if in_member:
        raise TarballReadError(f"error reading {gojson.quote(name)}: unexpected EOF")
    return "sha256:" + blob_hash.hexdigest(), "sha256:" + diff_hash.hexdigest(), OCI_LAYER_GZIP


def _open(name: str) -> BinaryIO:
    """The file, open; skopeo's words when it cannot be (it checks at parse time: an invalid name)."""
    try:
        return open(name, "rb")
    except OSError as exc:
        reason = f"error opening {gojson.quote(name)}: open {name}: {_go_errno_text(exc)}"
        raise InvalidReferenceError(f"Invalid source name tarball:{name}: {reason}", reason=reason,
                                    reference=f"tarball:{name}", hint="tarball: names existing layer tar files, joined by :") from None


def _go_errno_text(exc: OSError) -> str:
    """Go's text of an errno: strerror, lower-cased first letter."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


class TarballSource(SourceDefaults):
    """One image whose layers are the given files, in order."""

    def __init__(self, ref: TarballReference, stdin: BinaryIO | None = None) -> None:
        self.ref = ref
        self._stdin_data: bytes | None = None
        self._files: dict[str, str] = {}  # layer digest -> file name
        layers: list[Layer] = []
        mtimes: list[int] = []
        for name in ref.filenames:
            if name == STDIN:
                if self._stdin_data is None:
                    self._stdin_data = (stdin or sys.stdin.buffer).read()
                stream: BinaryIO = io.BytesIO(self._stdin_data)
                mtime_ns = time.time_ns()
            else:
                stream = _open(name)
            with stream:
                if name != STDIN:
                    mtime_ns = os.fstat(stream.fileno()).st_mtime_ns
                size = stream.seek(0, io.SEEK_END)
                stream.seek(0)
                digest, diff_id, media_type = _digests(stream, name)
            layers.append(Layer(digest, size, media_type, diff_id, gojson.time_text(mtime_ns)))
            mtimes.append(mtime_ns)
            self._files.setdefault(digest, name)
        newest = gojson.time_text(max(mtimes)) if mtimes else _ZERO_TIME
        history = [history_entry(layer.created, added_by(layer.diff_id), "imported from tarball") for layer in layers]
        self._config = config_json(created=newest, architecture=host_platform().architecture, os="linux", cmd=None,
                                   diff_ids=[layer.diff_id for layer in layers], history=history)
        self._manifest = manifest_json(self._config, layers, with_media_type=False)
        self._layers = {layer.digest: layer for layer in layers}

    def get_manifest(self, instance_digest: str | None = None) -> tuple[bytes, str]:
        if instance_digest is not None:
            raise UnsupportedError('manifest lists are not supported by the "tarball" transport')
        return self._manifest, OCI_MANIFEST

    def get_blob(self, info: BlobInfo) -> tuple[BinaryIO, int]:
        if info.digest == sha256_digest(self._config):
            return io.BytesIO(self._config), len(self._config)
        name = self._files.get(info.digest)
        if name is None:
            raise TarballReadError(f"no blob with digest {gojson.quote(info.digest)} found")
        if name == STDIN:
            assert self._stdin_data is not None
            return io.BytesIO(self._stdin_data), len(self._stdin_data)
        return _open(name), self._layers[info.digest].size

    def close(self) -> None:
        self._stdin_data = None


class TarballTransport:
    """The tarball: transport: read only, as in skopeo."""

    name = "tarball"

    def open_source(self, ref: TarballReference, options: SideOptions | None = None) -> TarballSource:
        return TarballSource(ref)

    def open_destination(self, ref: TarballReference, options: SideOptions | None = None) -> NoReturn:
        raise UnsupportedError('"tarball:" locations can only be read from, not written to')


TRANSPORT = TarballTransport()
