"""One redaction mechanism for every output: secret values, in every form they leak in, become ***."""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import sys
import threading
from typing import Any, Callable, Iterator
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter fragments would mask ordinary words


def leak_forms(value: str) -> set[str]:
    """value, its password part (for user:password), base64 and URL-encoded forms of both."""
    parts = {value}
    user, sep, password = value.partition(":")
    if sep and len(password) >= MIN_SECRET_LENGTH:
        parts.add(password)
    forms: set[str] = set()
    for part in parts:
        raw = part.encode()
        forms.update({part, quote(part, safe=""), quote_plus(part, safe=""),
                      base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
                      base64.b64encode(raw).decode().rstrip("=")})
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Redactor:
    """The set of secrets of a run; redact() masks all of them in text."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            new = leak_forms(value) - self._forms
            if new:
                self._forms |= new
                self._pattern = None

    def __bool__(self) -> bool:
        return bool(self._forms)

    def redact(self, text: str) -> str:
        if not self._forms or not text:
            return text
        with self._lock:
            if self._pattern is None:
                # Longest first, so a password inside its own base64 form cannot shadow it.
                alternatives = sorted(self._forms, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(a) for a in alternatives))
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
