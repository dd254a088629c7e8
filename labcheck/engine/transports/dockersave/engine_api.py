"""The subset of the Docker Engine API the docker-daemon: transport uses, over its unix socket."""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from typing import Any, BinaryIO

from labcheck.engine.base.errors import ImageNotFoundError, UnsupportedError
from labcheck.engine.transports.dockersave.unix_http import UnixHTTPConnection, socket_path_of
from labcheck.errors import LabcheckError

DEFAULT_HOST = "unix:///var/run/docker.sock"
MIN_API = (1, 22)  # what skopeo 1.9 asks for
MAX_API = (1, 41)  # docker 20.10; newer engines are asked for this version
_SEND_CHUNK = 1 << 20


class DaemonError(LabcheckError):
    """The Docker Engine refused a request or reported an error in its JSON stream."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def docker_host(daemon_host: str | None) -> str:
    """--*-daemon-host, else $DOCKER_HOST, else the default socket."""
    return daemon_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def _error_message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message") or body.decode(errors="replace").strip())
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()


class DockerEngine:
    """A client of one Docker Engine; the API version is negotiated on first use."""

    def __init__(self, host: str, *, timeout: float | None = 300.0) -> None:
        if host.startswith(("tcp://", "http://", "https://", "ssh://", "npipe://")):
            raise UnsupportedError(f"docker daemon host {host} is not supported",
                                   hint="labcheck reaches the Docker Engine through its unix socket: unix:///PATH")
        self.host = host
        self.socket_path = socket_path_of(host)
        self.timeout = timeout
        self._version: str | None = None

    def _connection(self) -> UnixHTTPConnection:
        return UnixHTTPConnection(self.socket_path, timeout=self.timeout)

    def _unreachable(self, exc: OSError) -> DaemonError:
        return DaemonError(
            f"Cannot connect to the Docker daemon at {self.host}: {exc.strerror or exc}",
            hint="is dockerd running? set --daemon-host or DOCKER_HOST to its socket (unix:///PATH)",
        )

    def api_version(self) -> str:
        """The API version both sides speak: the engine's own (from /_ping), capped at MAX_API."""
        if self._version is None:
            conn = self._connection()
            try:
                conn.request("GET", "/_ping")
                response = conn.getresponse()
                response.read()
                server = response.getheader("Api-Version")
                if not server:
                    conn.request("GET", "/version")
                    server = json.loads(conn.getresponse().read()).get("ApiVersion", "")
            except OSError as exc:
                raise self._unreachable(exc) from None
            finally:
                conn.close()
            wanted = min(_version_tuple(server), MAX_API) if server else MIN_API
            if wanted < MIN_API:
                raise DaemonError(f"the Docker Engine at {self.host} speaks API {server}, older than 1.22")
            self._version = f"{wanted[0]}.{wanted[1]}"
        return self._version

    def _url(self, path: str, **query: str) -> str:
        url = f"/v{self.api_version()}{path}"
        return url + ("?" + urllib.parse.urlencode(query) if query else "")

    @staticmethod
    def _image_path(name: str, suffix: str) -> str:
        return f"/images/{urllib.parse.quote(name, safe='/:@')}/{suffix}"

    def _get(self, path: str) -> tuple[UnixHTTPConnection, http.client.HTTPResponse]:
        conn = self._connection()
        try:
            conn.request("GET", path)
            return conn, conn.getresponse()
        except OSError as exc:
            conn.close()
            raise self._unreachable(exc) from None

    def _check(self, conn: UnixHTTPConnection, response: http.client.HTTPResponse, name: str) -> None:
        if response.status == 200:
            return
        message = _error_message(response.read(1 << 16))
        conn.close()
        if response.status == 404:
            raise ImageNotFoundError(f"Error response from daemon: {message}",
                                     hint=f"list the daemon's images with: docker images ({name} is not one)")
        raise DaemonError(f"Error response from daemon: {message}", status=response.status)

    def inspect_image(self, name: str) -> dict[str, Any]:
        """GET /images/{name}/json."""
        conn, response = self._get(self._url(self._image_path(name, "json")))
        try:
            self._check(conn, response, name)
            return json.loads(response.read())
        finally:
            conn.close()

    def save_image(self, name: str) -> BinaryIO:
        """GET /images/{name}/get: the `docker save` tar stream; the caller closes it."""
        conn, response = self._get(self._url(self._image_path(name, "get")))
        self._check(conn, response, name)
        return _ResponseStream(conn, response)  # type: ignore[return-value]

    def load_image(self) -> ImageLoad:
        """POST /images/load, its body sent as it is written."""
        return ImageLoad(self._connection(), self._url("/images/load", quiet="1"), self.host)


class _ResponseStream:
    """An HTTP response body that closes its connection with it."""

    def __init__(self, conn: UnixHTTPConnection, response: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._response = response

    def read(self, size: int = -1) -> bytes:
        return self._response.read(None if size is None or size < 0 else size)

    def close(self) -> None:
        self._response.close()
        self._conn.close()


class ImageLoad:
    """A `docker load` under way: write() sends the tar in HTTP chunks; finish() ends it and checks the result."""

    def __init__(self, conn: UnixHTTPConnection, url: str, host: str) -> None:
        self._conn = conn
        self._host = host
        self._buffer = bytearray()
        self.sent = 0
        try:
            conn.putrequest("POST", url)
            conn.putheader("Content-Type", "application/x-tar")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
        except OSError as exc:
            conn.close()
            raise DaemonError(f"Cannot connect to the Docker daemon at {host}: {exc}") from None

    def write(self, data: bytes | memoryview) -> int:
        if len(data) >= _SEND_CHUNK:  # a big piece goes out as its own chunk, without copies
            self._flush()
            self._send_chunk(data)
            return len(data)
        self._buffer += data
        if len(self._buffer) >= _SEND_CHUNK:
            self._flush()
        return len(data)

    def _flush(self) -> None:
        if self._buffer:
            self._send_chunk(self._buffer)
            self._buffer.clear()

    def _send_chunk(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self._conn.send(b"%x\r\n" % len(data))
            self._conn.send(data)
            self._conn.send(b"\r\n")
        except OSError:
            self._raise_daemon_error()  # the daemon stopped reading: its answer says why
        self.sent += len(data)

    def _raise_daemon_error(self) -> None:
        try:
            response = self._conn.getresponse()
            message = _error_message(response.read(1 << 16))
        except (OSError, http.client.HTTPException):
            message = "the connection was closed while the image was being sent"
        self._conn.close()
        raise DaemonError(f"saving image to docker engine: {message}")

    def finish(self) -> list[str]:
        """End the upload; returns the daemon's messages (e.g. "Loaded image: …"), or raises DaemonError."""
        self._flush()
        try:
            self._conn.send(b"0\r\n\r\n")
            response = self._conn.getresponse()
            body = response.read()
        except OSError as exc:
            self._conn.close()
            raise DaemonError(f"saving image to docker engine: {exc}") from None
        finally:
            self._conn.close()
        if response.status != 200:
            raise DaemonError(f"saving image to docker engine: {_error_message(body)}", status=response.status)
        return _load_messages(body)

    def abort(self) -> None:
        """Drop the connection without the final chunk: the daemon discards what it got."""
        self._conn.close()


def _load_messages(body: bytes) -> list[str]:
    """The `stream` texts of the daemon's JSON messages; DaemonError for an `error` message."""
    messages: list[str] = []
    decoder = json.JSONDecoder()
    text = body.decode(errors="replace")
    i = 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        try:
            message, i = decoder.raw_decode(text, i)
        except ValueError:
            raise DaemonError(f"saving image to docker engine: unexpected answer {text[i:i + 200]!r}") from None
        if not isinstance(message, dict):
            continue
        if message.get("error") or message.get("errorDetail"):
            detail = message.get("errorDetail") or {}
            raise DaemonError(f"saving image to docker engine: {detail.get('message') or message.get('error')}")
        if message.get("stream"):
            messages.append(str(message["stream"]).strip())
    return messages
