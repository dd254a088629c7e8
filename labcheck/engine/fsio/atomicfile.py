"""Atomic file writes (temp file in the same directory + fsync + rename) with skopeo's file modes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from labcheck.engine.fsio import readahead


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
FILE_MODE = 0o644 & ~_UMASK  # what Go's os.WriteFile(…, 0644) yields
DIR_MODE = 0o755 & ~_UMASK


def write_stream(path: Path, stream: BinaryIO, *, durable: bool = True) -> int:
    """Write stream to path atomically; returns the byte count. On any error nothing is left at path.
    durable=False skips the fsync: for spools that are read back and deleted, never a destination.

    The next chunk is read (and, through a verifying reader, hashed) while this one is written;
    an error of either side is raised as it was, after the reading thread has stopped.
    """

    def copy(fd: int) -> int:
        size = 0
        with readahead.chunks(stream) as chunks:
            for chunk in chunks:
                _write_all(fd, chunk)
                size += len(chunk)
        return size

    return _replace_atomically(path, copy, durable=durable)


def write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write data to path atomically (durable=False: without fsync, as in write_stream)."""
    _replace_atomically(path, lambda fd: _write_all(fd, memoryview(data)) or len(data), durable=durable)


def write(path: Path, content: BinaryIO | bytes, *, durable: bool = True) -> int:
    """write_stream or write_bytes, by what content is; returns the byte count."""
    if isinstance(content, bytes):
        write_bytes(path, content, durable=durable)
        return len(content)
    return write_stream(path, content, durable=durable)


def write_recording_new(path: Path, content: BinaryIO | bytes, created: list[Path], *, durable: bool = True) -> int:
    """write(), adding path to created when nothing was there before: what a failed copy removes
    (a file that existed is replaced by the same content, and kept)."""
    existed = path.exists()
    size = write(path, content, durable=durable)
    if not existed:
        created.append(path)
    return size


def _replace_atomically(path: Path, write: Callable[[int], int], *, durable: bool) -> int:
    """A temp file in path's directory, filled by write(fd), fsynced, renamed over path; nothing left on error."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:16]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            size = write(out.fileno())
            os.fchmod(out.fileno(), FILE_MODE)
            if durable:
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return size


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def fsync_dir(path: Path) -> None:
    """Make renames inside path durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> list[Path]:
    """mkdir -p with skopeo's mode; returns the directories it created, outermost first."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=0o755)
    return list(reversed(missing))


def remove_created(files: list[Path], dirs: list[Path]) -> None:
    """Undo a write: remove the files, then the (now empty) directories, innermost first."""
    for f in files:
        try:
            f.unlink()
        except FileNotFoundError:
            pass
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()
        except OSError:
            pass
