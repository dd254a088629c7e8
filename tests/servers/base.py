"""A threaded HTTP(S) server on 127.0.0.1 that records what it was asked, run as a context manager."""

from __future__ import annotations

import ssl
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str  # with query
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that hung up on a spoiled answer, as it should: no traceback on stderr
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class RecordingServer:
    """Serves `handler_class` (a BaseHTTPRequestHandler whose `server.owner` is this object)."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], *, tls_dir: Path | None = None) -> None:
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), handler_class)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self.scheme = "http"
        if tls_dir is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls_dir / "server.crt"), str(tls_dir / "server.key"))
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        # A short poll interval: shutdown() waits for it, and tests start and stop many servers.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"

    def record(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(Seen(handler.command, handler.path, dict(handler.headers.items())))

    def count(self, predicate: Callable[[Seen], bool] = lambda seen: True) -> int:
        with self._lock:
            return sum(1 for seen in self.requests if predicate(seen))

    def __enter__(self) -> "RecordingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
