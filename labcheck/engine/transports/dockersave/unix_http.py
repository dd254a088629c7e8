"""HTTP over a unix socket (the Docker Engine API), with the standard library's http.client."""

from __future__ import annotations

import http.client
import socket


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection whose transport is a unix stream socket at `socket_path`."""

    def __init__(self, socket_path: str, *, timeout: float | None = 60.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def socket_path_of(docker_host: str) -> str:
    """The socket path of a `unix://PATH` DOCKER_HOST value (or a bare path)."""
    return docker_host[len("unix://"):] if docker_host.startswith("unix://") else docker_host


def ping(socket_path: str, *, timeout: float = 2.0) -> bool:
    """True when a Docker Engine answers `GET /_ping` with OK on the socket."""
    conn = UnixHTTPConnection(socket_path, timeout=timeout)
    try:
        conn.request("GET", "/_ping")
        response = conn.getresponse()
        return response.status == 200 and response.read().strip() == b"OK"
    except OSError:
        return False
    finally:
        conn.close()
