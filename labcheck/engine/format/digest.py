"""sha256 digests: computing, validating, and a reader that verifies bytes as they stream."""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO, Callable

from labcheck.engine.base.errors import DigestMismatchError
from labcheck.errors import LabcheckError

# go-digest: the algorithms skopeo links in, and the loose form that tells "unsupported" from "malformed".
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")


class InvalidDigestError(LabcheckError):
    """A string that is not a sha256 digest where one is required."""


def sha256_digest(data: bytes) -> str:
    """The `sha256:<hex>` digest of data."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_problem(digest: str) -> str | None:
    """go-digest's verdict on an `algorithm:hex` string: None when valid, else its error text."""
    algorithm, colon, encoded = digest.partition(":")
    if not algorithm or not colon or not encoded:
        return "invalid checksum digest format"
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        if _GO_DIGEST_RE.fullmatch(digest):
            return "unsupported digest algorithm"
        return "invalid checksum digest format"
    if len(encoded) != length:
        return "invalid checksum digest length"
    if not _LOWER_HEX_RE.fullmatch(encoded):
        return "invalid checksum digest format"
    return None


def validate_digest(digest: str) -> str:
    """Return digest if it is a valid sha256 digest (the one algorithm labcheck stores blobs
    under); raise otherwise. Guards every path built from a digest."""
    if not digest.startswith("sha256:") or digest_problem(digest) is not None:
        raise InvalidDigestError(f"invalid digest {digest!r}", hint="expected sha256:<64 hex digits>")
    return digest


def digest_hex(digest: str) -> str:
    """The hex part of a validated sha256 digest."""
    return validate_digest(digest).split(":", 1)[1]


def verify_bytes(data: bytes, expected: str, *, what: str = "blob") -> bytes:
    """Return data if it hashes to expected, else raise DigestMismatchError."""
    actual = sha256_digest(data)
    if actual != expected:
        raise DigestMismatchError(expected, actual, what=what)
    return data


class VerifyingReader:
    """Wraps a stream; at end of stream, raises DigestMismatchError unless the bytes hash to expected.

    on_read(total_bytes_so_far) is called after each read, for progress reporting.
    """

    def __init__(
        self,
        stream: BinaryIO,
        expected: str,
        *,
        what: str = "blob",
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        validate_digest(expected)
        self._stream = stream
        self._expected = expected
        self._what = what
        self._on_read = on_read
        self._hash = hashlib.sha256()
        self.bytes_read = 0
        self.verified = False

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        if chunk:
            self._hash.update(chunk)
            self.bytes_read += len(chunk)
            if self._on_read:
                self._on_read(self.bytes_read)
        elif size != 0:
            self._check()
        return chunk

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """As read(), into buffer: with a source that has readinto too, no bytes are copied."""
        readinto = getattr(self._stream, "readinto", None)
        if readinto is None:
            data = self._stream.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        else:
            n = readinto(buffer)
        if n:
            with memoryview(buffer) as view:
                self._hash.update(view[:n])
            self.bytes_read += n
            if self._on_read:
                self._on_read(self.bytes_read)
        elif len(buffer):
            self._check()
        return n

    def _check(self) -> None:
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self._expected:
            raise DigestMismatchError(self._expected, actual, what=self._what)
        self.verified = True

    def drain(self) -> None:
        """Read to the end (so the digest is checked even if a consumer stopped early)."""
        while self.read(1 << 20):
            pass

    def close(self) -> None:
        self._stream.close()
