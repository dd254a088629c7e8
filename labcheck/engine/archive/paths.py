"""Safety of tar member names and link targets: nothing may point outside the archive."""

from __future__ import annotations

import posixpath
import tarfile

from labcheck.errors import LabcheckError

_ALLOWED_TYPES = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                  tarfile.CONTTYPE}


class UnsafeArchiveError(LabcheckError):
    """An archive entry whose name or link target leaves the archive; the whole archive is refused."""

    def __init__(self, message: str, *, entry: str, archive: str = "") -> None:
        super().__init__(message, hint="the archive is damaged or malicious; labcheck will not extract any of it")
        self.entry = entry
        self.archive = archive


def member_path(name: str) -> str:
    """The cleaned, archive-relative path of a member; UnsafeArchiveError for absolute paths and `..`."""
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"archive entry {name!r} has an invalid name", entry=name)
    if name.startswith("/"):
        raise UnsafeArchiveError(f"archive entry {name!r} has an absolute path", entry=name)
    cleaned = posixpath.normpath(name)
    if cleaned == ".." or cleaned.startswith("../"):
        raise UnsafeArchiveError(f"archive entry {name!r} points outside the archive (..)", entry=name)
    return cleaned


def symlink_target(member: str, linkname: str) -> str:
    """The archive path a symlink at member points to; UnsafeArchiveError if it leaves the archive."""
    if not linkname or linkname.startswith("/"):
        raise UnsafeArchiveError(
            f"archive entry {member!r} is a link to {linkname!r}, outside the archive", entry=member
        )
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(member), linkname))
    if joined == ".." or joined.startswith("../"):
        raise UnsafeArchiveError(
            f"archive entry {member!r} is a link to {linkname!r}, outside the archive", entry=member
        )
    return joined


def checked_member(info: tarfile.TarInfo) -> tuple[str, str | None]:
    """(cleaned path, archive path of its link target or None) of a member, or UnsafeArchiveError."""
    path = member_path(info.name)
    if info.type not in _ALLOWED_TYPES:
        raise UnsafeArchiveError(f"archive entry {info.name!r} is a device or fifo, not expected here", entry=info.name)
    if info.issym():
        return path, symlink_target(path, info.linkname)
    if info.islnk():
        try:
            return path, member_path(info.linkname)
        except UnsafeArchiveError:
            raise UnsafeArchiveError(
                f"archive entry {info.name!r} is a hard link to {info.linkname!r}, outside the archive",
                entry=info.name,
            ) from None
    return path, None
