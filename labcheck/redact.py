"""One redaction mechanism for every output: secret values, in every form they leak in, become ***."""

from __future__ import annotations

import base64
import contextlib
import html.entities
import logging
import re
import sys
import threading
from typing import Any, Callable, Iterator

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter fragments would mask ordinary words


def _char(c: str) -> str:
    """A regex for one character of a secret as any output may have encoded it, once or nested:
    backslash-escaped (JSON, repr, shell), \\uXXXX, an HTML/XML entity (&amp;amp;… included), %XX
    (%25XX included). Each output escapes differently, and often one encoding wraps another (a
    shell-quoted command in a JSON string in an HTML page), so no list of whole forms is complete."""
    if c.isascii() and c.isalnum():
        return c
    code = ord(c)
    name = html.entities.codepoint2name.get(code) or {"'": "apos"}.get(c)
    forms = [re.escape(c),
             rf"&(?:amp;)*(?:#0*{code};|#[xX](?i:0*{code:x});" + (f"|{name};" if name else "") + ")",
             "".join(rf"%(?:25)*(?i:{byte:02x})" for byte in c.encode())]
    units = c.encode("utf-16-be")
    forms.append(r"\\*".join(rf"\\u(?i:{units[i]:02x}{units[i + 1]:02x})" for i in range(0, len(units), 2)))
    if c == " ":
        forms.append(r"\+")
    # Any of them escaped by backslashes, once or nested (JSON in JSON, repr of a shell word).
    return r"\\*(?:" + "|".join(forms) + ")"


# A single quote inside a shell-quoted word: closed, quoted otherwise, reopened.
_SHELL_QUOTE = "(?:" + "|".join("".join(_char(c) for c in form) for form in ("'\"'\"'", "'\\''")) + ")"


def secret_pattern(value: str) -> str:
    """A regex matching value in its plain form and every escaped or quoted form of it (see _char)."""
    return "".join(f"(?:{_char(c)}|{_SHELL_QUOTE})" if c == "'" else _char(c) for c in value)


def leak_patterns(value: str) -> dict[str, int]:
    """Regexes for value and its password part (for user:password), in every escaped or quoted form,
    URL-encoded, and base64-encoded; each with the length of what it stands for (longest is tried first)."""
    parts = {value}
    user, sep, password = value.partition(":")
    if sep and len(password) >= MIN_SECRET_LENGTH:
        parts.add(password)
    patterns: dict[str, int] = {}
    for part in parts:
        raw = part.encode()
        encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
        patterns[secret_pattern(part)] = len(part)
        patterns.update({re.escape(form): len(form) for form in encoded | {form.rstrip("=") for form in encoded}})
    return patterns


class Redactor:
    """The set of secrets of a run; redact() masks all of them, in every form, in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._patterns: dict[str, int] = {}
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value not in self._secrets:
                self._secrets.add(value)
                self._patterns.update(leak_patterns(value))
                self._pattern = None

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def redact(self, text: str) -> str:
        if not self._secrets or not text:
            return text
        with self._lock:
            if self._pattern is None:
                # Longest first, so a password cannot mask the middle of its own user:password.
                alternatives = sorted(self._patterns, key=self._patterns.__getitem__, reverse=True)
                self._pattern = re.compile("|".join(alternatives))
            pattern = self._pattern
        return pattern.sub(MASK, text)

    def redact_data(self, value: Any) -> Any:
        """redact() applied to every string inside JSON-like data."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact_data(k): self.redact_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_data(v) for v in value]
        return value


# The process-wide redactor: every secret the scenario layer reads is added here.
REDACTOR = Redactor()


class RedactingLogFilter(logging.Filter):
    """Masks secrets in a log record's message and traceback text (formats the message once, early)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor:
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad format arguments: leave the record to logging's own error handling
            return True
        record.msg, record.args = self.redactor.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


def install_log_redaction(redactor: Redactor = REDACTOR) -> Callable[[], None]:
    """Redact every log record created from now on; returns the function that undoes it.

    A filter on the root logger would not see records of child loggers (logger filters apply only
    to the logger a record is created on), and pytest adds its capture handlers per test, so the
    filter runs in the record factory: every record passes it, whoever logs and whoever handles.
    """
    log_filter = RedactingLogFilter(redactor)
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        log_filter.filter(record)
        return record

    logging.setLogRecordFactory(factory)

    def uninstall() -> None:
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(previous)

    return uninstall


class RedactingStream:
    """A text stream whose writes reach the wrapped stream with every secret masked.

    Text is passed on a line at a time (or at flush), so a secret written in two pieces is still
    masked; everything else (isatty, fileno, encoding) is the wrapped stream's own.
    """

    def __init__(self, stream: Any, redactor: Redactor = REDACTOR) -> None:
        self.wrapped = stream
        self.redactor = redactor
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        cut = max(self._pending.rfind("\n"), self._pending.rfind("\r"))
        if cut >= 0:
            ready, self._pending = self._pending[:cut + 1], self._pending[cut + 1:]
            self.wrapped.write(self.redactor.redact(ready))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            ready, self._pending = self._pending, ""
            self.wrapped.write(self.redactor.redact(ready))
        self.wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def redacting(stream: Any, redactor: Redactor = REDACTOR) -> Any:
    """stream wrapped in a RedactingStream, unless it already is one."""
    return stream if isinstance(stream, RedactingStream) else RedactingStream(stream, redactor)


@contextlib.contextmanager
def redacted_output(redactor: Redactor = REDACTOR) -> Iterator[None]:
    """sys.stdout and sys.stderr mask secrets while the block runs (e.g. a whole pytest session)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = redacting(saved[0], redactor), redacting(saved[1], redactor)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = saved
