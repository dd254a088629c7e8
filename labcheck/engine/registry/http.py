"""HTTP plumbing of the registry client: TLS adapter, streaming bodies both ways, URLs fit for messages."""

from __future__ import annotations

import email.utils
import re
import ssl
import time
from typing import Any, Iterator
from urllib.parse import urlparse

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from labcheck.engine.base.errors import RegistryError
from labcheck.engine.base.limits import size_text
from labcheck.errors import LabcheckError


class TrustAdapter(HTTPAdapter):
    """HTTPS with our SSLContext (trust.py) and nothing else: neither certifi nor REQUESTS_CA_BUNDLE."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):  # type: ignore[no-untyped-def]
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, True, None)
        pool_kwargs.pop("ca_certs", None)
        pool_kwargs.pop("ca_cert_dir", None)
        return host_params, pool_kwargs

    def cert_verify(self, conn, url, verify, cert) -> None:  # type: ignore[no-untyped-def]
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


class SourceFailed(Exception):
    """Carries a failure of a request body's source through urllib3 and requests untouched: they would
    turn an OSError into a connection error of the registry."""


class UploadBody:
    """Chunks to send (the ones already taken from the iterator, then the rest), counting the bytes;
    the source's own error is kept in `failure`.

    With a known size, len() is that size: requests then sends a Content-Length instead of chunked
    encoding, and urllib3 sends each chunk as it is (chunked encoding copies every chunk once more).
    A source that gives more or fewer bytes fails here, never leaving the server waiting for bytes.
    """

    def __init__(self, taken: list[bytes | memoryview], rest: Iterator[bytes | memoryview], size: int = -1) -> None:
        self._taken = taken
        self._rest = rest
        self._size = size
        self.total = 0
        self.failure: BaseException | None = None

    def __len__(self) -> int:
        return max(self._size, 0)  # 0: unknown, and requests falls back to chunked encoding

    def __bool__(self) -> bool:
        return True  # a body, even while len() says "unknown"

    def __iter__(self) -> Iterator[bytes | memoryview]:
        try:
            for source in (self._taken, self._rest):
                for chunk in source:
                    if 0 <= self._size < self.total + len(chunk):
                        raise LabcheckError(f"the blob is longer than its size, {self._size} bytes")
                    self.total += len(chunk)
                    yield chunk
            if 0 <= self._size != self.total:
                raise LabcheckError(f"the blob is shorter than its size: {self.total} of {self._size} bytes")
        except Exception as exc:
            self.failure = exc
            raise SourceFailed() from None


def is_timeout(exc: BaseException) -> bool:
    """A socket that waited longer than its timeout, as the socket, http.client or urllib3 report it."""
    return isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError, requests.exceptions.Timeout))


class ResponseReader:
    """A file-like reader over a streaming response's raw (undecoded) body; a short body, a lost
    connection or a stall (no byte for stall_timeout seconds: the socket's timeout) raises
    RegistryError(temporary=True) instead of passing for the end."""

    def __init__(self, response: requests.Response, size: int, *, stall_timeout: float | None = None) -> None:
        self._response = response
        self._size = size
        self._read = 0
        self._stall_timeout = stall_timeout

    def read(self, size: int = -1) -> bytes:
        try:
            chunk = self._response.raw.read(None if size < 0 else size, decode_content=False)
        except Exception as exc:  # urllib3 raises its own types mid-stream
            chunk, failed, stalled = b"", True, is_timeout(exc)
        else:
            failed = stalled = False
        self._account(len(chunk), failed, ended=size != 0 and not chunk, stalled=stalled)
        return chunk

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """read() without copies: straight from http.client's response (urllib3's readinto copies),
        which still undoes chunked encoding; nothing is decoded, as in read()."""
        raw = self._response.raw
        fp = getattr(raw, "_fp", None)
        try:
            n = fp.readinto(buffer) if fp is not None else raw.readinto(buffer)
        except Exception as exc:
            n, failed, stalled = 0, True, is_timeout(exc)
        else:
            failed = stalled = False
        self._account(n, failed, ended=len(buffer) != 0 and not n, stalled=stalled)
        return n

    def _account(self, n: int, failed: bool, *, ended: bool, stalled: bool = False) -> None:
        """Count n bytes; a failure, or an end before the announced size, is a lost connection.
        Raised here, outside the except block, so the error has no __context__ from urllib3."""
        self._read += n
        if failed or (ended and 0 <= self._read < self._size):
            url = safe_url(self._response.url)
            if stalled:
                what = f"no data for {self._stall_timeout:g}s" if self._stall_timeout else "timed out"
                message = f"reading {url}: stalled ({what}) after {self._read} of {self._size} bytes"
            else:
                message = f"reading {url}: connection lost after {self._read} of {self._size} bytes"
            raise RegistryError(message, method="GET", url=url, temporary=True)

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> "ResponseReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BodyTooLarge(Exception):
    """A body longer than the limit its reader set; carries what the error message needs."""

    def __init__(self, size_seen: int, limit: int) -> None:
        super().__init__(size_seen, limit)
        self.size_seen = size_seen
        self.limit = limit

    def describe(self) -> str:
        return f"more than {size_text(self.limit)}"


def read_limited(response: requests.Response, limit: int) -> bytes:
    """The whole body of a streaming response, decoded as requests would, refusing more than limit
    bytes (BodyTooLarge, announced or sent) before it is all in memory. Stores it as the response's
    content, so .json() and .content work as for a response read whole by requests."""
    declared = response.headers.get("Content-Length", "") if response.request.method != "HEAD" else ""
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise BodyTooLarge(int(declared), limit)
    data = response.raw.read(limit + 1, decode_content=True)
    if len(data) > limit:
        response.close()
        raise BodyTooLarge(len(data), limit)
    response._content = data  # what requests itself fills in when it reads a body whole
    setattr(response, "_content_consumed", True)  # (not in requests' type stubs)
    response.close()  # back to the pool: the body is read
    return data


def next_link(header: str) -> str | None:
    """The target of a `Link: <url>; rel="next"` header (RFC 8288), if any."""
    for part in header.split(","):
        match = re.match(r'\s*<([^>]*)>\s*;(.*)$', part)
        if match and re.search(r'rel\s*=\s*"?next"?', match.group(2)):
            return match.group(1)
    return None


def rewindable(data: object) -> bool:
    return data is None or isinstance(data, (bytes, str))


def safe_url(url: str) -> str:
    """A URL fit for messages and logs: no query (tokens, upload state) and no user:password@."""
    parsed = urlparse(url)
    netloc = parsed.netloc.rpartition("@")[2]
    return parsed._replace(netloc=netloc, query="", fragment="").geturl()


def parse_retry_after(value: str) -> float:
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(parsed.timestamp() - time.time(), 0.0)
