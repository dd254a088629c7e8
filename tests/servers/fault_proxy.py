"""A forwarding proxy in front of a real registry that injects faults on request: a hostile registry.

Faults (`Fault`, added with `FaultProxy.inject`) spoil the next `times` requests whose path contains
`path`, each in one way (`KINDS`):

- `status`: answered `status` (with `Retry-After` when set) and the registry's JSON errors body;
- `reset`: the headers and half the body, then a TCP reset;
- `drip`: the headers, then one byte every `drip_gap` seconds (slower than the client's stall timeout);
- `truncate`: a shorter body with a Content-Length that matches it (a well-formed, short answer);
- `corrupt`: the body's length, but wrong bytes (a blob that does not match its digest);
- `redirect`: 307 to another host (`BlobStore`, as registries send blob reads to their storage);
- `oversize`: a manifest or blob padded past 4 MiB (JSON whitespace for a manifest).

`injected` counts what was injected, by kind. The older switches stay: `fail_path`/`fail_times`/
`fail_status`/`retry_after`, `drop_blobs` (half a blob, then the connection closed), and
`paginate_tags` (tag lists honour `n`/`last` and carry `Link: <…>; rel="next"`: distribution 2.8
ignores `n` for tags, so its own answers cannot exercise a client's pagination).
"""

from __future__ import annotations

import collections
import json
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from tests.servers.base import RecordingServer

PASSED_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest", "WWW-Authenticate",
                  "Docker-Distribution-Api-Version", "Location")
KINDS = ("status", "reset", "drip", "truncate", "corrupt", "redirect", "oversize")
OVERSIZE = (4 << 20) + 1024  # just past containers/image's 4 MiB limit of manifests and configs
DRIP_BYTES = 64  # a drip gives up after this many bytes: the client has stopped listening long before


@dataclass
class Fault:
    kind: str  # one of KINDS
    path: str = ""  # spoils requests whose path contains this ("": any request)
    times: int = 1  # how many matching requests it spoils
    status: int = 503  # for "status"
    retry_after: str | None = None  # for "status"
    method: str | None = "GET"  # spoils requests of this method only (None: any)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")

    @property
    def label(self) -> str:
        """The kind as the soak's table counts it: statuses by number, 429 with or without Retry-After."""
        if self.kind != "status":
            return self.kind
        if self.status == 429:
            return "429+retry-after" if self.retry_after is not None else "429"
        return str(self.status)


class BlobStore(RecordingServer):
    """Another host serving bytes under one-time random paths, as a registry's blob storage does."""

    def __init__(self, *, tls_dir: Path | None = None) -> None:
        super().__init__(_StoreHandler, tls_dir=tls_dir)
        self._objects: dict[str, bytes] = {}
        self._store_lock = threading.Lock()

    def put(self, data: bytes, *, host: str = "localhost") -> str:
        """The URL (on `host`, a name other than the proxy's 127.0.0.1) that serves data."""
        key = secrets.token_hex(8)
        with self._store_lock:
            self._objects[key] = data
        port = self.address.rsplit(":", 1)[1]
        return f"{self.scheme}://{host}:{port}/storage/{key}"

    def get(self, key: str) -> bytes | None:
        with self._store_lock:
            return self._objects.get(key)

    def requests_with_credentials(self) -> int:
        return self.count(lambda seen: any(name.lower() == "authorization" for name in seen.headers))


class _StoreHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        store: BlobStore = self.server.owner  # type: ignore[attr-defined]
        store.record(self)
        data = store.get(urlparse(self.path).path.rsplit("/", 1)[-1])
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.wfile.write(data or b"")


class FaultProxy(RecordingServer):
    def __init__(self, upstream: str, *, ca_file: Path, tls_dir: Path | None = None,
                 store: BlobStore | None = None) -> None:
        super().__init__(_ProxyHandler, tls_dir=tls_dir)
        self.upstream = upstream.rstrip("/")
        self.ca_file = ca_file
        self.store = store  # where "redirect" sends blob reads
        self.drip_gap = 1.0
        self.fail_path = ""
        self.fail_times = 0
        self.fail_status = 503
        self.retry_after: str | None = None
        self.drop_blobs = False
        self.paginate_tags = False
        self.injected: collections.Counter[str] = collections.Counter()
        self._faults: list[Fault] = []
        self._failed = 0
        self._lock = threading.Lock()
        self._upstream_session = requests.Session()

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        """Forget the faults still pending (not what was injected)."""
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first pending fault for this request, used up once more."""
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.path in path and (fault.method is None or fault.method == method):
                    fault.times -= 1
                    self.injected[fault.label] += 1
                    return fault
        return None

    def should_fail(self, path: str) -> bool:
        with self._lock:
            if self.fail_path and self.fail_path in path and self._failed < self.fail_times:
                self._failed += 1
                return True
        return False

    def fetch(self, method: str, path: str, headers: dict[str, str]) -> requests.Response:
        return self._upstream_session.request(method, self.upstream + path, verify=str(self.ca_file),
                                              headers=headers, stream=True, timeout=30, allow_redirects=False)


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
            return self._status_only(self.proxy.fail_status, self.proxy.retry_after)
        path = urlparse(self.path).path
        if self.proxy.paginate_tags and path.endswith("/tags/list"):
            return self._tag_page()
        fault = self.proxy.take_fault(self.command, path)
        if fault is not None and fault.kind == "status":
            return self._status_only(fault.status, fault.retry_after)
        upstream = self.proxy.fetch(self.command, self.path, {k: v for k, v in self.headers.items()
                                                              if k.lower() in ("accept", "authorization")})
        body = b"" if self.command == "HEAD" else upstream.raw.read(decode_content=False)
        headers = {name: upstream.headers[name] for name in PASSED_HEADERS if name in upstream.headers}
        if fault is not None and upstream.status_code == 200:
            return self._spoil(fault, upstream.status_code, headers, body)
        dropping = self.proxy.drop_blobs and "/blobs/" in path and self.command == "GET" and len(body) > 1
        self._answer(upstream.status_code, headers, None if dropping else body)
        if dropping:
            self._send_half_then(body, reset=False)

    # --- answers ---------------------------------------------------------------------------------

    def _answer(self, status: int, headers: dict[str, str], body: bytes | None) -> None:
        """Status and headers; then body, unless None (the caller sends its own)."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body is not None:
            self.wfile.write(body)

    def _spoil(self, fault: Fault, status: int, headers: dict[str, str], body: bytes) -> None:
        kind = fault.kind
        if kind == "redirect":
            if self.proxy.store is None:
                raise RuntimeError("a redirect fault needs the proxy's BlobStore")
            location = self.proxy.store.put(body)
            return self._answer(307, {"Location": location, "Content-Length": "0"}, b"")
        if kind == "truncate":
            short = body[: len(body) // 2]
            return self._answer(status, {**headers, "Content-Length": str(len(short))}, short)
        if kind == "corrupt":
            wrong = bytes(b ^ 0x5A for b in body[:64]) + body[64:]
            return self._answer(status, headers, wrong)
        if kind == "oversize":
            padded = self._padded(body, headers.get("Content-Type", ""))
            return self._answer(status, {**headers, "Content-Length": str(len(padded))}, padded)
        self._answer(status, headers, None)
        if kind == "reset":
            return self._send_half_then(body, reset=True)
        if kind == "drip":
            return self._drip(body)
        raise AssertionError(kind)

    @staticmethod
    def _padded(body: bytes, content_type: str) -> bytes:
        if "json" in content_type and body.rstrip().endswith(b"}"):
            stripped = body.rstrip()
            return stripped[:-1] + b" " * (OVERSIZE - len(stripped)) + b"}"  # still valid JSON
        return body + b"\0" * max(OVERSIZE - len(body), 0)

    def _send_half_then(self, body: bytes, *, reset: bool) -> None:
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        if reset:  # SO_LINGER 0: close() sends RST, as a crashed or cut-off server does
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def _drip(self, body: bytes) -> None:
        self.close_connection = True
        try:
            for i in range(min(len(body), DRIP_BYTES)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(self.proxy.drip_gap)
        except OSError:
            pass  # the client gave up, as it should

    def _status_only(self, status: int, retry_after: str | None) -> None:
        body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "injected fault"}]}).encode()
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
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
