"""Reading a stream in bounded chunks."""

from __future__ import annotations

from typing import IO, Iterator


def iter_chunks(stream: IO[bytes], chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Read a stream in bounded chunks."""
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return
        yield chunk
