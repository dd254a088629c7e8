"""Renders the engine's copy progress events as skopeo does: plain lines, or a bar on a terminal."""

from __future__ import annotations

from typing import TextIO

from labcheck.engine.base.interfaces import ProgressEvent

_LINES = {
    "start": "Getting image source signatures",
    "manifest": "Writing manifest to image destination",
    "done": "Storing signatures",
    "list-manifest": "Writing manifest list to image destination",
    "list-done": "Storing list signatures",
}


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1024
    return f"{n}B"


class LineProgress:
    """skopeo's output when its output is not a terminal: one line per step."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: ProgressEvent) -> None:
        line = self.line(event)
        if line is not None:
            self.out.write(line + "\n")
            self.out.flush()

    @staticmethod
    def line(event: ProgressEvent) -> str | None:
        if event.kind in _LINES:
            return _LINES[event.kind]
        if event.kind == "blob":
            return f"Copying blob {event.digest}"
        if event.kind == "config":
            return f"Copying config {event.digest}"
        if event.kind == "list-start":
            return f"Getting image list signatures\nCopying {event.total} of {event.total} images in list"
        if event.kind == "image":
            return f"Copying image {event.digest} ({event.index}/{event.total})"
        return None


class BarProgress:
    """On a terminal: a line per finished blob and one live bar for the blob in progress."""

    WIDTH = 30

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._live = False

    def _clear(self) -> None:
        if self._live:
            self.out.write("\r\x1b[K")
            self._live = False

    def _print(self, line: str) -> None:
        self._clear()
        self.out.write(line + "\n")
        self.out.flush()

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "blob-progress":
            total = event.size if event.size > 0 else 0
            filled = int(self.WIDTH * event.done / total) if total else 0
            bar = "=" * filled + ">" + " " * (self.WIDTH - filled)
            amount = f"{_human(event.done)} / {_human(total)}" if total else _human(event.done)
            self._clear()
            self.out.write(f"Copying blob {_short(event.digest)} [{bar[: self.WIDTH]}] {amount}")
            self.out.flush()
            self._live = True
        elif event.kind == "blob-done":
            self._print(f"Copying blob {_short(event.digest)} done")
        elif event.kind == "blob-skipped":
            self._print(f"Copying blob {_short(event.digest)} skipped: already exists")
        elif event.kind == "config":
            self._print(f"Copying config {_short(event.digest)} done")
        elif event.kind != "blob":
            line = LineProgress.line(event)
            if line is not None:
                self._print(line)
