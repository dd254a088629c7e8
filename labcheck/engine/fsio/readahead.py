"""Overlapped streaming: a helper thread reads (and so verifies) while the caller writes.

Socket reads, sha256 of large buffers and file or socket writes all release the GIL, so reading
the next chunk while the previous one is written roughly overlaps network and disk. Memory stays
bounded: at most DEPTH buffers of CHUNK bytes exist per stream, and they are reused, not
reallocated (fresh multi-MiB allocations cost a page fault per 4 KiB every time).
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator

# Small enough that a buffer is still in the CPU's cache when the other thread writes it out: with
# 4 MiB buffers the writes cost twice the system time (measured), and memory stays small per stream.
CHUNK = 256 << 10
DEPTH = 4  # buffers per stream: one being read, one being written, two queued between them

ReadInto = Callable[[memoryview], int]


def read_into_of(stream: BinaryIO) -> ReadInto:
    """stream.readinto when it has one, else read() copied into the buffer."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return readinto  # type: ignore[no-any-return]

    def fallback(view: memoryview) -> int:
        data = stream.read(len(view))
        view[: len(data)] = data
        return len(data)

    return fallback


def fill(read_into: ReadInto, buffer: bytearray) -> int:
    """Read until buffer is full or the stream ends; a short count means the stream ended
    (and read_into has returned 0, which is when a verifying reader checks the digest)."""
    view = memoryview(buffer)
    filled = 0
    try:
        while filled < len(buffer):
            n = read_into(view[filled:])
            if not n:
                break
            filled += n
    finally:
        view.release()
    return filled


class _Stop(Exception):
    """The consumer went away; the reader thread ends quietly."""


@contextmanager
def chunks(
    stream: BinaryIO, *, chunk_size: int | None = None, depth: int | None = None
) -> Iterator[Iterator[memoryview]]:
    """The stream's bytes as memoryviews of reused buffers, read ahead by a helper thread.

    Each view is valid only until the next one is requested: consume (write) it first. A reader
    error is raised, unchanged, from the iteration. Leaving the block joins the thread, so nothing
    reads the stream after it, whether the consumer finished, failed or stopped early.
    A stream that fits in one buffer is read without a thread.
    """
    chunk_size = chunk_size or CHUNK
    first = bytearray(chunk_size)
    read_into = read_into_of(stream)
    n = fill(read_into, first)
    if n < chunk_size:
        yield iter((memoryview(first)[:n],) if n else ())
        return
    pipe = _Pipe(read_into, chunk_size, (depth or DEPTH) - 1)
    try:
        yield pipe.iterate(first)
    finally:
        pipe.stop()


class _Pipe:
    def __init__(self, read_into: ReadInto, chunk_size: int, spare: int) -> None:
        self._read_into = read_into
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(max(spare, 1)):
            self._free.put(bytearray(chunk_size))
        self._full: queue.Queue[tuple[bytearray, int] | BaseException | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labcheck-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                buffer = self._free.get()
                if self._stopping.is_set():
                    return
                n = fill(self._read_into, buffer)
                if n:
                    self._full.put((buffer, n))
                if n < len(buffer):
                    self._full.put(None)
                    return
        except BaseException as exc:  # handed to the consumer, who raises it
            self._full.put(exc)

    def iterate(self, first: bytearray) -> Iterator[memoryview]:
        view = memoryview(first)
        yield view
        view.release()
        self._free.put(first)
        while True:
            item = self._full.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            buffer, n = item
            view = memoryview(buffer)[:n]
            yield view
            view.release()
            self._free.put(buffer)

    def stop(self) -> None:
        self._stopping.set()
        self._free.put(bytearray(0))  # wakes a reader waiting for a buffer; it sees _stopping
        self._thread.join()
