"""A course page as data: its shell commands in page order, each with the result the page documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from labcheck.errors import UsageError


class PageError(UsageError):
    """A page that cannot be read as a course page (no shell blocks, an unterminated block): exit 2."""


@dataclass(frozen=True)
class DocumentedResult:
    """What the page shows a command printing: a JSON document or lines of text.

    `lines` are (page line, text) with the page's `# ` output prefix removed, blank lines left out.
    For JSON, `data` is the parsed document (None when even a lenient parse failed) and `key_lines`
    maps a dotted key path (`Labels.vendor`, `0.Config.Labels.name`) to the page line it is on.
    """

    kind: Literal["json", "text"]
    line: int  # the first line of the result's content
    lines: tuple[tuple[int, str], ...]
    data: Any = None
    key_lines: dict[str, int] = field(default_factory=dict)
    label: str = ""  # the tab it came from ("Result", "Result #2"), or "" for output lines after a command


@dataclass(frozen=True)
class PageCommand:
    """One shell command of the page, verbatim (continuation lines joined), in page order."""

    text: str
    line: int  # the page line the command starts on
    section: str = ""  # the heading it is under
    result: DocumentedResult | None = None

    def where(self, page: Page) -> str:
        return f"{page.path}:{self.line}"


@dataclass(frozen=True)
class Page:
    path: Path
    title: str
    commands: tuple[PageCommand, ...]
    # Values of --creds/--src-creds/--dest-creds (and the password part) in the page's commands:
    # public on the page, yet redacted in every report and log like any other credential.
    credentials: tuple[str, ...] = ()

    def find(self, text: str) -> PageCommand | None:
        return next((c for c in self.commands if c.text == text), None)
