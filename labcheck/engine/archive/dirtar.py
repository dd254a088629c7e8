"""Writing a directory tree as a tar stream the way skopeo 1.9 does (Go's archive/tar, ustar headers)."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from labcheck.engine.fsio.chunks import iter_chunks
from labcheck.errors import LabcheckError

BLOCK = 512


class TarWriteError(LabcheckError):
    """A file in the tree cannot be represented in a ustar header."""


@lru_cache(maxsize=64)
def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@lru_cache(maxsize=64)
def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def _octal(value: int, width: int) -> bytes:
    """Go's ustar numeric field: zero-padded octal, NUL-terminated."""
    text = b"%0*o" % (width - 1, value)
    if len(text) > width - 1:
        raise TarWriteError(f"value {value} does not fit a {width}-byte tar field")
    return text + b"\0"


def _text(value: str, width: int) -> bytes:
    raw = value.encode()
    if len(raw) > width:
        raise TarWriteError(f"{value!r} is longer than the {width} bytes a ustar header allows")
    return raw.ljust(width, b"\0")


def header(name: str, st: os.stat_result, typeflag: bytes, *, size: int = 0, linkname: str = "") -> bytes:
    """One 512-byte ustar header with the fields Go's tar.FileInfoHeader fills in (mode keeps the type bits)."""
    fields = [
        _text(name, 100),
        _octal(stat.S_IFMT(st.st_mode) | stat.S_IMODE(st.st_mode), 8),
        _octal(st.st_uid, 8),
        _octal(st.st_gid, 8),
        _octal(size, 12),
        _octal(int(st.st_mtime), 12),
        b" " * 8,  # checksum placeholder
        typeflag,
        _text(linkname, 100),
        b"ustar\x0000",
        _text(_user_name(st.st_uid), 32),
        _text(_group_name(st.st_gid), 32),
        _octal(0, 8),
        _octal(0, 8),
        b"\0" * 155,
    ]
    block = bytearray(b"".join(fields).ljust(BLOCK, b"\0"))
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _walk(root: Path, rel: str = "") -> list[tuple[str, Path]]:
    """Every entry under root in Go's filepath.Walk order (names sorted bytewise, parents first)."""
    out: list[tuple[str, Path]] = []
    for name in sorted(os.listdir(root / rel if rel else root), key=os.fsencode):
        child_rel = f"{rel}/{name}" if rel else name
        path = root / child_rel
        out.append((child_rel, path))
        if path.is_dir() and not path.is_symlink():
            out.extend(_walk(root, child_rel))
    return out


def write_tree(root: Path, out: BinaryIO) -> None:
    """Write everything under root (not root itself) to out as an uncompressed tar, then the end marker."""
    for rel, path in _walk(root):
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            out.write(header(rel + "/", st, b"5"))
        elif stat.S_ISLNK(st.st_mode):
            out.write(header(rel, st, b"2", linkname=os.readlink(path)))
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as data:
                out.write(header(rel, st, b"0", size=st.st_size))
                written = 0
                for chunk in iter_chunks(data):
                    out.write(chunk)
                    written += len(chunk)
            if written != st.st_size:
                raise TarWriteError(f"{path} changed size while it was archived")
            out.write(b"\0" * (-written % BLOCK))
        else:
            raise TarWriteError(f"{path} is neither a file, a directory nor a symlink")
    out.write(b"\0" * (2 * BLOCK))
