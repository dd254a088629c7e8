"""Tar writing whose bytes equal Go's archive/tar output for what skopeo writes (USTAR, no record padding):
members streamed in order (docker-archive:, docker-daemon:), and whole directory trees (oci-archive:)."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Protocol

from labcheck.engine.fsio import readahead
from labcheck.engine.fsio.chunks import iter_chunks
from labcheck.errors import LabcheckError

BLOCK = 512
_OCTAL_SIZE_MAX = 0o77777777777  # what fits the 12-byte size field as octal
REGULAR = b"0"
SYMLINK = b"2"
DIRECTORY = b"5"


class TarWriteError(LabcheckError):
    """A member cannot be written (a name too long for USTAR, a stream of the wrong length)."""


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> object: ...


def _octal(value: int, width: int) -> bytes:
    """Go's formatOctal: zero-padded digits and a NUL terminator."""
    return (oct(value)[2:].rjust(width - 1, "0")).encode() + b"\x00"


def _size_field(size: int) -> bytes:
    if size <= _OCTAL_SIZE_MAX:
        return _octal(size, 12)
    # Go would switch to a PAX header; base-256 keeps the header one block (every reader accepts it).
    return bytes([0x80]) + size.to_bytes(11, "big")


def _split_name(name: str) -> tuple[bytes, bytes]:
    """(prefix, name) as Go's splitUSTARPath does for names longer than 100 bytes."""
    raw = name.encode()
    if len(raw) <= 100:
        return b"", raw
    for i in range(min(len(raw) - 1, 155), 0, -1):
        if raw[i:i + 1] == b"/" and len(raw) - i - 1 <= 100 and i <= 155:
            return raw[:i], raw[i + 1:]
    raise TarWriteError(f"tar member name too long: {name}")


def _text(value: str, width: int) -> bytes:
    raw = value.encode()
    if len(raw) > width:
        raise TarWriteError(f"{value!r} is longer than the {width} bytes a ustar header allows")
    return raw


def header(name: str, *, size: int = 0, mode: int = 0o444, typeflag: bytes = REGULAR, linkname: str = "",
           uid: int = 0, gid: int = 0, mtime: int = 0, uname: str = "", gname: str = "") -> bytes:
    """One USTAR header block as Go writes it; by default as for tar.FileInfoHeader(…) with mtime 0
    and owner 0:0 (docker save's members), else with the owner and time of a file on disk."""
    prefix, short = _split_name(name)
    link = linkname.encode()
    if len(link) > 100:
        raise TarWriteError(f"tar link target too long: {linkname}")
    block = bytearray(BLOCK)
    block[0:len(short)] = short
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(uid, 8)
    block[116:124] = _octal(gid, 8)
    block[124:136] = _size_field(size)
    block[136:148] = _octal(mtime, 12)
    block[156:157] = typeflag
    block[157:157 + len(link)] = link
    block[257:265] = b"ustar\x0000"
    user, group = _text(uname, 32), _text(gname, 32)
    block[265:265 + len(user)] = user
    block[297:297 + len(group)] = group
    block[329:337] = _octal(0, 8)  # devmajor
    block[337:345] = _octal(0, 8)  # devminor
    block[345:345 + len(prefix)] = prefix
    block[148:156] = b" " * 8
    block[148:156] = _octal(sum(block), 7) + b" "
    return bytes(block)


def padding(size: int) -> bytes:
    return b"\x00" * (-size % BLOCK)


class TarWriter:
    """Writes members to a sink in order; close() adds the two zero blocks Go ends an archive with."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.offset = 0  # bytes written so far

    def _write(self, data: bytes | memoryview) -> None:
        self.sink.write(data)
        self.offset += len(data)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._write(header(name, size=len(data)))
        self._write(data)
        self._write(padding(len(data)))

    def add_symlink(self, name: str, target: str) -> None:
        self._write(header(name, mode=0, typeflag=SYMLINK, linkname=target))

    def add_stream(self, name: str, size: int, stream: BinaryIO) -> None:
        """A member of a size known in advance; TarWriteError if the stream's length differs."""
        self._write(header(name, size=size))
        written = 0
        with readahead.chunks(stream) as chunks:  # the next piece is read while this one is written
            for chunk in chunks:
                if written + len(chunk) > size:
                    raise TarWriteError(f"size mismatch when copying {name}: more than the expected {size} bytes")
                self._write(chunk)
                written += len(chunk)
        if written != size:
            raise TarWriteError(f"size mismatch when copying {name}: expected {size}, got {written}")
        self._write(padding(size))

    def close(self) -> None:
        self._write(b"\x00" * (2 * BLOCK))


class SeekableTarWriter(TarWriter):
    """A TarWriter on a regular file, which can also write a member whose name and size are known only at its end."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.file = file

    def add_unsized(self, stream: BinaryIO) -> tuple[int, int]:
        """Write stream's bytes after a placeholder header; returns (header offset, size) for finish_unsized()."""
        start = self.offset
        self._write(b"\x00" * BLOCK)
        size = 0
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            self._write(chunk)
            size += len(chunk)
        self._write(padding(size))
        return start, size

    def finish_unsized(self, start: int, name: str, size: int) -> None:
        """Give the member written at start its real header."""
        self.file.seek(start)
        self.file.write(header(name, size=size))
        self.file.seek(self.offset)

    def discard_from(self, start: int) -> None:
        """Drop everything written from start on (a member that turned out to be a duplicate)."""
        self.file.seek(start)
        self.file.truncate(start)
        self.offset = start


# --- a directory tree, as containers/storage's archive.Tar writes it for oci-archive: ------------


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


def _file_header(name: str, st: os.stat_result, typeflag: bytes, *, size: int = 0, linkname: str = "") -> bytes:
    """The header Go's tar.FileInfoHeader gives a file on disk (mode keeps the type bits)."""
    return header(name, size=size, mode=stat.S_IFMT(st.st_mode) | stat.S_IMODE(st.st_mode), typeflag=typeflag,
                  linkname=linkname, uid=st.st_uid, gid=st.st_gid, mtime=int(st.st_mtime),
                  uname=_user_name(st.st_uid), gname=_group_name(st.st_gid))


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
            out.write(_file_header(rel + "/", st, DIRECTORY))
        elif stat.S_ISLNK(st.st_mode):
            out.write(_file_header(rel, st, SYMLINK, linkname=os.readlink(path)))
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as data:
                out.write(_file_header(rel, st, REGULAR, size=st.st_size))
                written = 0
                for chunk in iter_chunks(data):
                    out.write(chunk)
                    written += len(chunk)
            if written != st.st_size:
                raise TarWriteError(f"{path} changed size while it was archived")
            out.write(padding(written))
        else:
            raise TarWriteError(f"{path} is neither a file, a directory nor a symlink")
    out.write(b"\x00" * (2 * BLOCK))
