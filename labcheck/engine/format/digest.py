"""sha256 digests: computing, validating, and a reader that verifies bytes as they stream."""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO, Callable

from labcheck.engine.base.errors import DigestMismatchError
from labcheck.errors import LabcheckError

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class InvalidDigestError(LabcheckError):
    """A string that is not a sha256 digest where one is required."""


def sha256_digest(data: bytes) -> str:
    """The `sha256:<hex>` digest of data."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def validate_digest(digest: str) -> str:
    """Return digest if it is a well-formed sha256 digest; raise otherwise (guards path building)."""
    if not _DIGEST_RE.match(digest):
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
