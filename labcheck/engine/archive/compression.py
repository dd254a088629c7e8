"""Layer compression as containers/image detects it: magic bytes, streaming decompression, diffID hashing."""

from __future__ import annotations

import bz2
import hashlib
import lzma
import zlib
from typing import Any, BinaryIO, Generator, Iterator

from labcheck.engine.base.errors import UnsupportedError
from labcheck.engine.fsio.chunks import iter_chunks
from labcheck.errors import LabcheckError

GZIP = "gzip"
BZIP2 = "bzip2"
XZ = "xz"
ZSTD = "zstd"

_MAGIC = [(b"\x1f\x8b\x08", GZIP), (b"BZh", BZIP2), (b"\xfd7zXZ\x00", XZ), (b"\x28\xb5\x2f\xfd", ZSTD)]
MAGIC_LEN = 6
_OUT_CHUNK = 1 << 20  # decompressed bytes produced per step: bounds memory whatever the ratio


def detect(prefix: bytes) -> str | None:
    """The compression of a stream starting with prefix, or None when it is not compressed."""
    for magic, name in _MAGIC:
        if prefix.startswith(magic):
            return name
    return None


class CorruptDataError(LabcheckError):
    """Compressed bytes that do not decompress (a damaged or tampered blob)."""


def _new_decompressor(kind: str) -> Any:
    if kind == GZIP:
        return zlib.decompressobj(wbits=31)
    if kind == BZIP2:
        return bz2.BZ2Decompressor()
    if kind == XZ:
        return lzma.LZMADecompressor()
    if kind == ZSTD:
        import zstandard  # only when a zstd layer shows up

        return zstandard.ZstdDecompressor().decompressobj()
    raise UnsupportedError(f"{kind} compressed layers are not supported", hint="copy the image from a registry instead")


# zstd's decompressobj has no output limit: it is fed this many compressed bytes at a time, which
# bounds one step's output (at most ~32 MiB even for the most extreme ratio zstd allows).
_ZSTD_IN_SLICE = 1024


class StreamDecompressor:
    """Push-style decompression: feed() bytes, iterate the decompressed chunks (each at most 1 MiB).

    The compression is detected from the first bytes; uncompressed input passes through as it is.
    """

    def __init__(self) -> None:
        self.compression: str | None = None
        self._decided = False
        self._prefix = b""
        self._decomp: Any = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not self._decided:
            self._prefix += data
            if len(self._prefix) < MAGIC_LEN:
                return
            data, self._prefix = self._prefix, b""
            self._decide(data)
        yield from self._push(data)

    def finish(self) -> Iterator[bytes]:
        """The last chunks, at the end of input; raises if a compressed stream was cut short."""
        if not self._decided:
            data, self._prefix = self._prefix, b""
            self._decide(data)
            yield from self._push(data)
        if self._decomp is not None and not self._decomp.eof:
            raise UnsupportedError(f"truncated {self.compression} stream", hint="the blob is incomplete")

    @property
    def passthrough(self) -> bool:
        """Decided, and uncompressed: what comes out is what went in."""
        return self._decided and self._decomp is None

    def _decide(self, prefix: bytes) -> None:
        self._decided = True
        self.compression = detect(prefix)
        if self.compression:
            self._decomp = _new_decompressor(self.compression)

    def _push(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._push_unchecked(data)
        except (zlib.error, OSError, lzma.LZMAError, EOFError, _zstd_error()) as exc:
            raise CorruptDataError(f"{self.compression} data is corrupt: {exc}",
                                   hint="the blob is damaged; its digest check would fail too") from None

    def _push_unchecked(self, data: bytes) -> Iterator[bytes]:
        if self._decomp is None:
            if data:
                yield data
            return
        while data:
            d = self._decomp
            if d.eof:
                if self.compression == GZIP and data.startswith(b"\x1f\x8b"):
                    self._decomp = d = _new_decompressor(GZIP)  # the next member of a multi-member gzip
                elif self.compression == ZSTD and _starts_zstd_frame(data):
                    self._decomp = d = _new_decompressor(ZSTD)  # the next frame (zstd:chunked writes many)
                elif data.strip(b"\x00"):
                    raise UnsupportedError(f"unexpected data after the end of a {self.compression} stream")
                else:
                    return
            if self.compression == ZSTD:
                data = yield from self._push_zstd(d, data)
                continue
            if isinstance(d, _ZLIB_TYPE):
                while True:
                    out = d.decompress(data, _OUT_CHUNK)
                    if out:
                        yield out
                    data = d.unconsumed_tail
                    if d.eof or not data:
                        break
            else:
                out = d.decompress(data, _OUT_CHUNK)
                if out:
                    yield out
                while not d.eof and not d.needs_input:
                    out = d.decompress(b"", _OUT_CHUNK)
                    if out:
                        yield out
                data = b""
            if d.eof:
                data = d.unused_data


    def _push_zstd(self, d: Any, data: bytes) -> Generator[bytes, None, bytes]:
        """Feed zstd's decompressor in small slices; what follows the end of its frames is returned."""
        view = memoryview(data)
        while view:
            piece, view = view[:_ZSTD_IN_SLICE], view[_ZSTD_IN_SLICE:]
            out = d.decompress(piece)
            if out:
                yield out
            if d.eof:
                return bytes(d.unused_data) + bytes(view)
        return b""


def _starts_zstd_frame(data: bytes) -> bool:
    """A zstd frame, or a skippable frame (magic 0x184D2A5?), starts here."""
    return data.startswith(b"\x28\xb5\x2f\xfd") or (
        len(data) >= 4 and data[1:4] == b"\x2a\x4d\x18" and data[0] & 0xF0 == 0x50
    )


def _zstd_error() -> type[Exception]:
    """zstandard's error type when the package is loaded (it is imported only for zstd layers)."""
    import sys

    module = sys.modules.get("zstandard")
    return module.ZstdError if module is not None else OSError  # type: ignore[no-any-return]


_ZLIB_TYPE = type(zlib.decompressobj())


# --- compressing (copy's --dest-compress-format, --dest-compress-level) ------------------------

COMPRESSORS = (GZIP, ZSTD)
ZSTD_DEFAULT_LEVEL = 3  # zstd's own default, as containers/image's zstd.SpeedDefault


class Compressor:
    """Push-style compression in one of COMPRESSORS: compress() pieces, then flush() the end."""

    def __init__(self, kind: str, level: int | None = None) -> None:
        self.kind = kind
        if kind == GZIP:
            self._obj: Any = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION if level is None else level, zlib.DEFLATED, 31)
        elif kind == ZSTD:
            import zstandard

            self._obj = zstandard.ZstdCompressor(level=ZSTD_DEFAULT_LEVEL if level is None else level).compressobj()
        else:
            raise UnsupportedError(f"cannot find compressor for {kind!r}", hint="use gzip or zstd")

    def compress(self, data: bytes) -> bytes:
        return self._obj.compress(data)

    def flush(self) -> bytes:
        return self._obj.flush()


class DecompressingReader:
    """Pull-style: reads the decompressed bytes of a stream (gzip, bzip2, xz, zstd), or its bytes as they are."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._dec = StreamDecompressor()
        self._gen: Iterator[bytes] = iter(())
        self._held = b""
        self._eof = False

    @property
    def compression(self) -> str | None:
        return self._dec.compression

    def read(self, size: int = -1) -> bytes:
        while not self._held:
            chunk = next(self._gen, None)
            if chunk is not None:
                self._held = chunk
                break
            if self._eof:
                return b""
            raw = self._stream.read(1 << 16)
            if raw:
                self._gen = self._dec.feed(raw)
            else:
                self._eof = True
                self._gen = self._dec.finish()
        if size is None or size < 0 or size >= len(self._held):
            out, self._held = self._held, b""
        else:
            out, self._held = self._held[:size], self._held[size:]
        return out

    def close(self) -> None:
        self._stream.close()


class DigestingReader:
    """Passes a stream through, computing the sha256 and size of what passed."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._hash.update(chunk)
        self.size += len(chunk)
        return chunk

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def close(self) -> None:
        self._stream.close()


class DiffIDTee:
    """Passes a (possibly compressed) stream through unchanged and hashes its decompressed bytes on the side."""

    def __init__(self, stream: BinaryIO) -> None:
        self._outer = DigestingReader(stream)
        self._dec = StreamDecompressor()
        self._diff = hashlib.sha256()
        self._diff_size = 0
        self._finished = False

    def read(self, size: int = -1) -> bytes:
        chunk = self._outer.read(size)
        if chunk:
            self._absorb(self._dec.feed(chunk))
        elif size != 0 and not self._finished:
            self._finished = True
            self._absorb(self._dec.finish())
        return chunk

    def _absorb(self, chunks: Iterator[bytes]) -> None:
        for out in chunks:
            if self._dec.passthrough:
                continue  # uncompressed: the diffID is the outer digest; hashing the bytes again is waste
            self._diff.update(out)
            self._diff_size += len(out)

    def finish(self) -> tuple[str, str, int]:
        """(digest of the bytes passed, diffID, uncompressed size); reads any rest of the stream first."""
        while self.read(1 << 20):
            pass
        if self._dec.passthrough:
            return self._outer.digest, self._outer.digest, self._outer.size
        return self._outer.digest, "sha256:" + self._diff.hexdigest(), self._diff_size

    def close(self) -> None:
        self._outer.close()


def copy_stream(stream: BinaryIO, out: BinaryIO) -> int:
    """Copy stream to out in bounded chunks; returns the byte count."""
    total = 0
    for chunk in iter_chunks(stream):
        out.write(chunk)
        total += len(chunk)
    return total
