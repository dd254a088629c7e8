"""A forwarding proxy in front of a real registry that injects faults on request.

- `fail_times` requests whose path contains `fail_path` are answered `fail_status` (with
  `Retry-After` when set) before requests pass through;
- `drop_blobs`: blob GETs send the headers and half the body, then the connection is closed;
- `paginate_tags`: tag lists honour `n`/`last` and carry `Link: <…>; rel="next"` (distribution
  2.8 ignores `n` for tags, so its own answers cannot exercise a client's pagination).
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from tests.servers.base import RecordingServer

PASSED_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest", "WWW-Authenticate",
                  "Docker-Distribution-Api-Version")


class FaultProxy(RecordingServer):
    def __init__(self, upstream: str, *, ca_file: Path, tls_dir: Path | None = None) -> None:
        super().__init__(_ProxyHandler, tls_dir=tls_dir)
        self.upstream = upstream.rstrip("/")
        self.ca_file = ca_file
        self.fail_path = ""
        self.fail_times = 0
        self.fail_status = 503
        self.retry_after: str | None = None
        self.drop_blobs = False
        self.paginate_tags = False
        self._failed = 0
        self._lock = threading.Lock()

    def should_fail(self, path: str) -> bool:
        with self._lock:
            if self.fail_path and self.fail_path in path and self._failed < self.fail_times:
                self._failed += 1
                return True
        return False


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    @property
    def proxy(self) -> FaultProxy:
        return self.server.owner  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def _handle(self) -> None:
        self.proxy.record(self)
        if self.proxy.should_fail(self.path):
            return self._status_only(self.proxy.fail_status)
        path = urlparse(self.path).path
        if self.proxy.paginate_tags and path.endswith("/tags/list"):
            return self._tag_page()
        upstream = requests.request(self.command, self.proxy.upstream + self.path, verify=str(self.proxy.ca_file),
                                    headers={k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")},
                                    stream=True, timeout=30)
        body = b"" if self.command == "HEAD" else upstream.raw.read(decode_content=False)
        self.send_response(upstream.status_code)
        for name in PASSED_HEADERS:
            if name in upstream.headers:
                self.send_header(name, upstream.headers[name])
        self.end_headers()
        if self.proxy.drop_blobs and "/blobs/" in path and self.command == "GET" and len(body) > 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def _status_only(self, status: int) -> None:
        body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "injected fault"}]}).encode()
        self.send_response(status)
        if self.proxy.retry_after is not None:
            self.send_header("Retry-After", self.proxy.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _tag_page(self) -> None:
        url = urlparse(self.path)
        full = requests.get(self.proxy.upstream + url.path, verify=str(self.proxy.ca_file), timeout=30).json()
        tags = sorted(full.get("tags") or [])
        query = parse_qs(url.query)
        last = query.get("last", [""])[0]
        size = int(query.get("n", [str(len(tags) or 1)])[0])
        rest = [t for t in tags if t > last] if last else tags
        page, more = rest[:size], len(rest) > size
        body = json.dumps({"name": full.get("name"), "tags": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if more:
            self.send_header("Link", f'<{url.path}?{urlencode({"last": page[-1], "n": size})}>; rel="next"')
        self.end_headers()
        self.wfile.write(body)
