"""Tar member names and link targets kept inside the archive, and extraction that refuses anything else.

One rule for every reader (docker-archive:, docker-daemon:, oci-archive:): a member's path is
cleaned as Go's path.Clean does, and an absolute path, a path or link that leaves the archive, or a
special file refuses the whole archive.
"""

from __future__ import annotations

import gzip
import lzma
import os
import posixpath
import stat
import tarfile
import zlib
from pathlib import Path
from typing import IO

from labcheck.engine.fsio.chunks import iter_chunks
from labcheck.errors import LabcheckError

_ALLOWED_TYPES = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                  tarfile.CONTTYPE}
ROOT = "."

# What a damaged or cut-off archive raises while it is read (the compression's own errors included).
DAMAGED = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)


class UnsafeArchiveError(LabcheckError):
    """An archive entry whose name or link target leaves the archive; the whole archive is refused."""

    def __init__(self, message: str, *, entry: str, archive: str = "") -> None:
        super().__init__(message, hint="the archive is damaged or malicious; labcheck will not extract any of it")
        self.entry = entry
        self.archive = archive


def member_path(name: str) -> str:
    """The cleaned, archive-relative path of a member ("." for the root); UnsafeArchiveError for
    invalid or absolute names and for `..` that leaves the archive."""
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"archive entry {name!r} has an invalid name", entry=name)
    if name.startswith("/"):
        raise UnsafeArchiveError(f"archive entry {name!r} has an absolute path", entry=name)
    cleaned = posixpath.normpath(name)
    if cleaned == ".." or cleaned.startswith("../"):
        raise UnsafeArchiveError(f"archive entry {name!r} points outside the archive ('..')", entry=name)
    return cleaned


def symlink_target(member: str, linkname: str) -> str:
    """The archive path a symlink at member points to; UnsafeArchiveError if it leaves the archive."""
    if not linkname or linkname.startswith("/"):
        raise UnsafeArchiveError(
            f"archive entry {member!r} is a symlink to {linkname!r}, outside the archive", entry=member
        )
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(member), linkname))
    if joined == ".." or joined.startswith("../"):
        raise UnsafeArchiveError(
            f"archive entry {member!r} is a symlink to {linkname!r}, outside the archive", entry=member
        )
    return joined


def hardlink_target(member: str, linkname: str) -> str:
    """The archive path a hard link names; UnsafeArchiveError if it leaves the archive."""
    try:
        return member_path(linkname)
    except UnsafeArchiveError as exc:
        reason = exc.message.split(" ", 3)[-1]  # "has an absolute path", "points outside the archive ('..')"
        raise UnsafeArchiveError(f"archive entry {member!r} is a hard link whose target {reason}",
                                 entry=member) from None


def checked_member(info: tarfile.TarInfo) -> tuple[str, str | None]:
    """(cleaned path, archive path of its link target or None) of a member, or UnsafeArchiveError."""
    path = member_path(info.name)
    if info.type not in _ALLOWED_TYPES:
        raise UnsafeArchiveError(f"archive entry {info.name!r} is a device, fifo or other special file", entry=info.name)
    if info.issym():
        return path, symlink_target(path, info.linkname)
    if info.islnk():
        return path, hardlink_target(info.name, info.linkname)
    return path, None


# --- extraction (oci-archive:) -------------------------------------------------------------------


def _ensure_real_dirs(root: Path, rel: str) -> None:
    """Create rel's directories under root; refuse when one of them exists as a symlink or a file."""
    current = root
    for part in Path(rel).parts:
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


def _write_file(target: Path, data: IO[bytes], mode: int) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        for chunk in iter_chunks(data):
            out.write(chunk)


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, rel: str, link: str | None) -> None:
    _ensure_real_dirs(root, posixpath.dirname(rel))
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
        _clear(target)
        os.symlink(member.linkname, target)
    elif member.islnk():
        assert link is not None
        if link == ROOT:
            raise ValueError("is a hard link to the archive root")
        source = root / link
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

    Absolute names, `..` leaving the archive, symlinks resolving outside, hard links to anything but
    an earlier file, writing through a symlink, and special files all raise UnsafeArchiveError; files
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
                    rel, link = checked_member(member)
                except UnsafeArchiveError as exc:
                    raise UnsafeArchiveError(f"refusing to extract {shown}: {exc.message}", entry=member.name,
                                             archive=shown) from None
                try:
                    if rel == ROOT:
                        if not member.isdir():
                            raise ValueError("names the archive root but is not a directory")
                        continue
                    _extract_member(tar, member, root, rel, link)
                    if not _is_inside(root, (root / rel).parent):
                        raise ValueError("resolves outside the destination")
                except ValueError as exc:
                    raise UnsafeArchiveError(f"refusing to extract {shown}: entry {member.name!r} {exc}",
                                             entry=member.name, archive=shown) from None
    except DAMAGED as exc:
        raise LabcheckError(f"{shown} is damaged or cut off: {exc.__class__.__name__}: {exc}",
                            hint="the archive was not written completely, or was changed since") from None
