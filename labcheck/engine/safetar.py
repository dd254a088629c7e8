"""Extracting a tar archive into a directory, refusing every entry that could land outside it."""

from __future__ import annotations

import gzip
import lzma
import os
import stat
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from labcheck.engine.archive_paths import UnsafeArchiveError
from labcheck.engine.types import iter_chunks
from labcheck.errors import LabcheckError

# What a damaged or cut-off archive raises while it is read (the compression's own errors included).
DAMAGED = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)

def member_path(name: str) -> PurePosixPath | None:
    """The relative path an entry name stands for; None for the archive root itself.

    Raises ValueError (with the reason) for absolute names and names with `..`.
    """
    if not name or "\x00" in name:
        raise ValueError("has an empty or invalid name")
    if name.startswith("/"):
        raise ValueError("has an absolute path")
    parts = [p for p in PurePosixPath(name).parts if p != "."]
    if ".." in parts:
        raise ValueError("contains '..'")
    return PurePosixPath(*parts) if parts else None


def link_target_inside(entry: PurePosixPath, target: str) -> bool:
    """Whether a symlink at entry pointing to target resolves inside the archive root (lexically)."""
    if not target or target.startswith("/"):
        return False
    depth = len(entry.parts) - 1  # the link's directory, counted from the root
    for part in PurePosixPath(target).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part != ".":
            depth += 1
    return True


def _ensure_real_dirs(root: Path, rel: PurePosixPath) -> None:
    """Create rel's directories under root; refuse when one of them exists as a symlink or a file."""
    current = root
    for part in rel.parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"goes through {'/'.join(current.relative_to(root).parts)!r}, which is not a directory")


def _clear(target: Path) -> None:
    """Remove a previous non-directory entry of the same name (later entries win, as in tar)."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise ValueError("would replace a directory")
    os.unlink(target)


def _write_file(target: Path, data: BinaryIO, mode: int) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        for chunk in iter_chunks(data):
            out.write(chunk)


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, rel: PurePosixPath) -> None:
    _ensure_real_dirs(root, rel.parent)
    target = root / rel
    if member.isdir():
        if os.path.lexists(target) and not (target.is_dir() and not target.is_symlink()):
            raise ValueError("is a directory where a file or link already is")
        if not os.path.lexists(target):
            os.mkdir(target, 0o755)
    elif member.isreg():
        _clear(target)
        data = tar.extractfile(member)
        assert data is not None
        with data:
            _write_file(target, data, 0o644 | (member.mode & 0o111))
    elif member.issym():
        if not link_target_inside(rel, member.linkname):
            raise ValueError(f"is a symlink to {member.linkname!r}, outside the archive")
        _clear(target)
        os.symlink(member.linkname, target)
    elif member.islnk():
        try:
            source_rel = member_path(member.linkname)
        except ValueError as exc:
            raise ValueError(f"is a hard link whose target {exc}") from None
        if source_rel is None:
            raise ValueError("is a hard link to the archive root")
        source = root / source_rel
        if not source.is_file() or source.is_symlink() or not _is_inside(root, source):
            raise ValueError(f"is a hard link to {member.linkname!r}, which is not a file extracted before it")
        _clear(target)
        os.link(source, target)
    else:
        raise ValueError("is a device, fifo or other special file")


def _is_inside(root: Path, path: Path) -> bool:
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


def extract(archive: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
    """Extract archive (plain or compressed tar) into the existing directory destination.

    Absolute names, `..`, symlinks resolving outside, hard links to anything but an earlier
    file, writing through a symlink, and special files all raise UnsafeArchiveError; files
    stream in bounded chunks. On error, what was extracted so far stays for the caller to remove.
    """
    root = Path(destination)
    shown = os.fspath(archive)
    try:
        tar = tarfile.open(archive, "r:*")
    except DAMAGED as exc:
        raise LabcheckError(f"{shown} is not a tar archive: {exc}", hint="oci-archive: expects a tar file") from None
    try:
        with tar:
            for member in tar:
                try:
                    rel = member_path(member.name)
                    if rel is None:
                        if not member.isdir():
                            raise ValueError("names the archive root but is not a directory")
                        continue
                    _extract_member(tar, member, root, rel)
                    if not _is_inside(root, (root / rel).parent):
                        raise ValueError("resolves outside the destination")
                except ValueError as exc:
                    raise UnsafeArchiveError(f"refusing to extract {shown}: entry {member.name!r} {exc}",
                                             entry=member.name, archive=shown) from None
    except DAMAGED as exc:
        raise LabcheckError(f"{shown} is damaged or cut off: {exc.__class__.__name__}: {exc}",
                            hint="the archive was not written completely, or was changed since") from None
