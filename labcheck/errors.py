"""The error hierarchy every layer raises; a user sees one line and the hint."""

from __future__ import annotations

from pathlib import Path


class LabcheckError(Exception):
    """A failure a user can act on: printed as one line, with a hint when there is one."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(LabcheckError):
    """Bad input on the command line or in a file: exit code 2."""

    exit_code = 2


class ScenarioValueError(UsageError):
    """A scenario value that is wrong once rendered on a host (a template that fails to render, a
    regular expression that does not compile): a scenario error, exit 2, even when a step finds it."""


def read_named_file(path: str | Path, what: str) -> str:
    """The text of a file the user named; a UsageError `cannot read WHAT PATH: reason` otherwise."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
