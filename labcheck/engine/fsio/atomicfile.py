"""Atomic file writes (temp file in the same directory + fsync + rename) with skopeo's file modes; a
lock that gives one writer at a time a destination directory, and removal of what a killed writer left."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from labcheck.engine.fsio import readahead
from labcheck.errors import LabcheckError


class NoSpaceError(LabcheckError):
    """The file system of a destination is full (or the user's quota is used up)."""


# What _replace_atomically names its temporary files: "." + up to 16 characters of the name + "." +
# mkstemp's 8 random characters + ".tmp".
TEMP_NAME = re.compile(r"^\..{1,16}\.[a-z0-9_]{8}\.tmp$")


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
    def write(fd: int) -> int:
        _write_all(fd, memoryview(data))
        return len(data)

    _replace_atomically(path, write, durable=durable)


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
    try:
        return _replace(path, write, durable=durable)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpaceError(f"no space left on the file system of {path.parent} while writing {path.name}",
                               hint="free some space or choose another destination") from None
        raise


def _replace(path: Path, write: Callable[[int], int], *, durable: bool) -> int:
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
    created = []
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o755)
        except FileExistsError:  # another writer made it meanwhile: not ours to remove
            continue
        created.append(d)
    return created


def is_temp_name(name: str, of: tuple[str, ...] | None = None) -> bool:
    """Whether name is a temporary file of _replace_atomically (of: only for files of these names)."""
    return bool(TEMP_NAME.match(name)) and (of is None or any(name.startswith(f".{o[:16]}.") for o in of))


def remove_stale_temps(directory: Path, of: tuple[str, ...] | None = None) -> list[Path]:
    """Remove the temporary files a writer killed outright (SIGKILL, a crash) left in directory (of:
    only those for files of these names). Only while holding its DirectoryLock: then no other writer
    of labcheck's is using them."""
    removed = []
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        if is_temp_name(entry.name, of) and entry.is_file() and not entry.is_symlink():
            try:
                entry.unlink()
            except FileNotFoundError:
                continue
            removed.append(entry)
    return removed


class DirectoryLock:
    """An exclusive lock on a destination directory, held from opening the destination to closing it:
    two copies into one dir: or oci: destination take turns (the last one's image is what stays,
    whole), and the one holding it may remove what a killed writer left. flock(2) on the directory
    itself: the kernel releases it when the holder dies, however it dies.

    The directory is created when missing; created lists the directories this lock made (for
    remove_created when the copy fails)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.created: list[Path] = []
        while True:
            self.created += make_dirs(path)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the other writer (a signal interrupts the wait)
                opened = os.fstat(fd)
                try:
                    now = os.stat(path)
                except FileNotFoundError:
                    now = None
            except BaseException:
                os.close(fd)
                raise
            if now is not None and (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino):
                self._fd: int | None = fd
                return
            os.close(fd)  # the other writer failed and removed the directory it had made: make it again

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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
