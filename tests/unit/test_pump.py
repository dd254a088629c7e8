"""The read-ahead pump and the atomic file writes built on it: all bytes, bounded buffers, errors as raised."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from pathlib import Path

import pytest

from labcheck.engine.fsio import atomicfile as fsatomic, readahead as pump
from labcheck.engine.format.digest import VerifyingReader
from labcheck.engine.base.errors import DigestMismatchError

CHUNK = 64 << 10


class Recording(io.RawIOBase):
    """A readinto-only stream of `data` that records the buffers it fills and how far it got."""

    def __init__(self, data: bytes, *, fail_at: int | None = None, delay: float = 0.0) -> None:
        self._data = memoryview(data)
        self.position = 0
        self.fail_at = fail_at
        self.delay = delay
        self.buffers: set[int] = set()
        self.reads_after_close = 0
        self.closed_by_test = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
        if self.closed_by_test:
            self.reads_after_close += 1
        if self.delay:
            time.sleep(self.delay)
        if self.fail_at is not None and self.position >= self.fail_at:
            raise ConnectionResetError("injected: connection reset")
        self.buffers.add(id(memoryview(buffer).obj))
        n = min(len(buffer), len(self._data) - self.position, 10_000)  # short reads, as sockets do
        buffer[:n] = self._data[self.position:self.position + n]
        self.position += n
        return n


def drain(stream, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    out = bytearray()
    with pump.chunks(stream, chunk_size=CHUNK, **kwargs) as chunks:
        for chunk in chunks:
            out += chunk
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 10 * CHUNK + 123])
def test_every_byte_in_order(size: int) -> None:
    data = os.urandom(size)
    assert drain(Recording(data)) == data
    assert drain(io.BytesIO(data)) == data  # read()-only streams too


def test_a_stream_that_fits_one_buffer_needs_no_thread() -> None:
    before = threading.active_count()
    seen: list[int] = []
    with pump.chunks(Recording(b"x" * 100), chunk_size=CHUNK) as chunks:
        for chunk in chunks:
            seen.append(threading.active_count())
    assert seen == [before]


def test_buffers_are_bounded_and_reused() -> None:
    stream = Recording(os.urandom(40 * CHUNK))
    ahead = 0
    with pump.chunks(stream, chunk_size=CHUNK, depth=3) as chunks:
        consumed = 0
        for chunk in chunks:
            consumed += len(chunk)
            time.sleep(0.001)  # a slow writer: the reader must wait for a free buffer
            ahead = max(ahead, stream.position - consumed)
    assert len(stream.buffers) <= 3
    assert ahead <= 3 * CHUNK


def test_a_reader_error_midway_is_raised_unchanged_and_the_thread_ends() -> None:
    before = threading.active_count()
    stream = Recording(os.urandom(20 * CHUNK), fail_at=5 * CHUNK)
    with pytest.raises(ConnectionResetError, match="injected"):
        drain(stream)
    assert threading.active_count() == before


def test_a_writer_error_stops_the_reader_before_the_block_ends() -> None:
    before = threading.active_count()
    stream = Recording(os.urandom(100 * CHUNK), delay=0.001)
    with pytest.raises(OSError, match="disk full"):
        with pump.chunks(stream, chunk_size=CHUNK) as chunks:
            for i, _ in enumerate(chunks):
                if i == 2:
                    raise OSError("disk full")
    stream.closed_by_test = True
    time.sleep(0.05)
    assert stream.reads_after_close == 0
    assert threading.active_count() == before
    assert stream.position < 100 * CHUNK


def test_views_are_invalid_once_the_next_is_asked_for() -> None:
    kept = []
    with pump.chunks(Recording(os.urandom(5 * CHUNK)), chunk_size=CHUNK) as chunks:
        for chunk in chunks:
            kept.append(chunk)
    with pytest.raises(ValueError):
        bytes(kept[0])


def test_verifying_reader_readinto_checks_the_digest() -> None:
    data = os.urandom(3 * CHUNK + 7)
    good = VerifyingReader(Recording(data), "sha256:" + hashlib.sha256(data).hexdigest())
    assert drain(good) == data and good.verified and good.bytes_read == len(data)
    bad = VerifyingReader(Recording(data), "sha256:" + "0" * 64)
    with pytest.raises(DigestMismatchError):
        drain(bad)


def test_write_stream_leaves_nothing_when_the_digest_is_wrong(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pump, "CHUNK", CHUNK)
    data = os.urandom(8 * CHUNK)
    reader = VerifyingReader(Recording(data), "sha256:" + "0" * 64)
    with pytest.raises(DigestMismatchError):
        fsatomic.write_stream(tmp_path / "blob", reader)
    assert list(tmp_path.iterdir()) == []


def test_write_stream_leaves_nothing_when_the_source_fails_midway(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pump, "CHUNK", CHUNK)
    stream = Recording(os.urandom(8 * CHUNK), fail_at=4 * CHUNK)
    with pytest.raises(ConnectionResetError):
        fsatomic.write_stream(tmp_path / "blob", stream)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_write_stream_writes_atomically_with_the_file_mode(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pump, "CHUNK", CHUNK)
    data = os.urandom(5 * CHUNK + 1)
    target = tmp_path / "blob"
    assert fsatomic.write_stream(target, Recording(data)) == len(data)  # type: ignore[arg-type]
    assert target.read_bytes() == data
    assert target.stat().st_mode & 0o777 == fsatomic.FILE_MODE
    assert [p.name for p in tmp_path.iterdir()] == ["blob"]


@pytest.mark.parametrize("durable", [True, False])
def test_fsync_once_per_file_and_never_for_spools(tmp_path: Path, monkeypatch, durable: bool) -> None:
    from labcheck.engine.transports.dir import DirImageDestination
    from labcheck.engine.base.interfaces import BlobInfo

    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    data = os.urandom(3 * CHUNK)
    dest = DirImageDestination(tmp_path / "image", durable=durable)
    dest.put_blob(Recording(data), BlobInfo("sha256:" + hashlib.sha256(data).hexdigest(), len(data)))  # type: ignore[arg-type]
    dest.put_manifest(b"{}", "application/vnd.oci.image.manifest.v1+json")
    dest.commit()
    dest.close()
    assert len(synced) == (4 if durable else 0)  # the blob, version, manifest.json, the directory
