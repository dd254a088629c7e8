"""Reading a `docker save` tar *stream* without spooling it: a metadata pass, then members handed out in stream order."""

from __future__ import annotations

import tarfile
import threading
from pathlib import Path
from typing import BinaryIO, Callable

from labcheck.engine.archive.compression import MAGIC_LEN, DecompressingReader, detect
from labcheck.engine.archive.extract import checked_member
from labcheck.engine.fsio import tmpdir
from labcheck.engine.transports.dockersave.reader import MAX_CONFIG_SIZE, ArchiveFormatError, Catalog

_BUFSIZE = 1 << 20
_KEEP_BUDGET = 64 << 20  # small members kept in memory during the metadata pass, at most


class _Prefixed:
    """A member's bytes with its first bytes (already read for detection) put back in front."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix = prefix
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        return self._rest.read(size)

    def close(self) -> None:
        pass


def scan_metadata(stream: BinaryIO) -> tuple[Catalog, dict[str, bytes]]:
    """One pass over a tar stream: every member checked and catalogued, small non-layer files kept.

    Compressed members are measured decompressed (Member.uncompressed_size); layer data is read and dropped.
    """
    catalog = Catalog()
    small: dict[str, bytes] = {}
    budget = _KEEP_BUDGET
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=_BUFSIZE) as tar:
            for info in tar:
                member = catalog.add(info)
                if member.kind != "file":
                    continue
                data = tar.extractfile(info)
                assert data is not None
                prefix = data.read(MAGIC_LEN)
                keep = member.size <= min(MAX_CONFIG_SIZE, budget) and not member.path.endswith(".tar")
                if keep:
                    small[member.path] = prefix + data.read()
                    budget -= member.size
                if detect(prefix):
                    member.uncompressed_size = _measure(_Prefixed(prefix, data))  # type: ignore[arg-type]
    except tarfile.TarError as exc:
        raise ArchiveFormatError(f"reading the image archive: {exc}") from None
    return catalog, small


def _measure(stream: BinaryIO) -> int:
    reader = DecompressingReader(stream)
    size = 0
    while chunk := reader.read(_BUFSIZE):
        size += len(chunk)
    return size


class _DirectReader:
    """A member read straight from the stream; the stream is free for others once it ends or is closed."""

    def __init__(self, data: BinaryIO, release: Callable[[], None]) -> None:
        self._data = data
        self._release = release
        self._released = False

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        if not chunk and size != 0:
            self._free()
        return chunk

    def _free(self) -> None:
        if not self._released:
            self._released = True
            self._release()

    def close(self) -> None:
        self._free()


class SequentialMembers:
    """Hands out the wanted members of a tar stream read once, in stream order, with bounded memory.

    A member asked for before the stream reaches it goes straight from the stream to whoever asked; a wanted
    member the stream passes before anyone asks for it is spooled to a private temporary directory, under a
    name of our own (never the archive's). Thread-safe: callers block until their member comes.
    """

    def __init__(self, open_stream: Callable[[], BinaryIO], wanted: set[str]) -> None:
        self._open_stream = open_stream
        self._wanted = set(wanted)
        self._cond = threading.Condition()
        self._waiting: set[str] = set()
        self._handoff: dict[str, _DirectReader] = {}
        self._spooled: dict[str, Path] = {}
        self._taken: set[str] = set()
        self._busy = False
        self._eof = False
        self._error: BaseException | None = None
        self._stream: BinaryIO | None = None
        self._tar: tarfile.TarFile | None = None
        self._spool_dir: Path | None = None
        self._closed = False
        self.spooled_bytes = 0
        self.direct_members = 0

    def open(self, path: str) -> BinaryIO:
        with self._cond:
            self._waiting.add(path)
        try:
            while True:
                ready = self._wait_for_turn(path)
                if ready is not None:
                    return ready
                found = self._advance(path)
                if found is not None:
                    return found
        finally:
            with self._cond:
                self._waiting.discard(path)

    def _wait_for_turn(self, path: str) -> BinaryIO | None:
        """Our member if it is ready; else None once this thread owns the stream."""
        with self._cond:
            while True:
                if self._closed:
                    raise ArchiveFormatError("the image source was closed")
                if self._error is not None:
                    raise ArchiveFormatError(f"reading the image stream failed earlier: {self._error}")
                if path in self._spooled:
                    return open(self._spooled[path], "rb")
                if path in self._handoff:
                    return self._handoff.pop(path)  # type: ignore[return-value]
                if path in self._taken:
                    raise ArchiveFormatError(f"{path} was already read from the stream and cannot be read again")
                if self._eof:
                    raise ArchiveFormatError(f"{path} is missing from the image stream")
                if not self._busy:
                    self._busy = True
                    return None
                self._cond.wait()

    def _release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def _advance(self, path: str) -> BinaryIO | None:
        """Move the stream to its next member (this thread owns it) and dispatch that member."""
        try:
            if self._tar is None:
                self._stream = self._open_stream()
                self._tar = tarfile.open(fileobj=self._stream, mode="r|", bufsize=_BUFSIZE)
            info = self._tar.next()
            if info is None:
                with self._cond:
                    self._eof = True
                self._release()
                return None
            member, _ = checked_member(info)
            if not info.isfile() or member not in self._wanted:
                self._release()
                return None
            data = self._tar.extractfile(info)
            assert data is not None
            with self._cond:
                asked = member in self._waiting
                if asked:
                    self._taken.add(member)
                    self.direct_members += 1
                    reader = _DirectReader(data, self._release)  # type: ignore[arg-type]
                    if member == path:
                        return reader  # type: ignore[return-value]
                    self._handoff[member] = reader
                    self._cond.notify_all()
                    return None
            spooled = self._spool(data)  # type: ignore[arg-type]
            with self._cond:
                self._spooled[member] = spooled
            self._release()
            return None
        except BaseException as exc:
            with self._cond:
                self._error = exc
                self._busy = False
                self._cond.notify_all()
            if isinstance(exc, tarfile.TarError):
                raise ArchiveFormatError(f"reading the image stream: {exc}") from None
            raise

    def _spool(self, data: BinaryIO) -> Path:
        if self._spool_dir is None:
            self._spool_dir = tmpdir.make_temp_dir("labcheck-layers-")
        target = self._spool_dir / f"{len(self._spooled)}.layer"
        with open(target, "wb") as out:
            self.spooled_bytes += _copy(data, out)
        return target

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._stream is not None:
            self._stream.close()
        tmpdir.remove_tree(self._spool_dir)


def _copy(data: BinaryIO, out: BinaryIO) -> int:
    total = 0
    while chunk := data.read(_BUFSIZE):
        out.write(chunk)
        total += len(chunk)
    return total
