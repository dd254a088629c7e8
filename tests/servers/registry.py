"""An in-process registry: the Registry HTTP API v2 subset labcheck's engine speaks, in memory.

The fast tier's stand-in for distribution (go-containerregistry keeps `pkg/registry` for the same
reason): /v2/, blobs HEAD/GET, uploads POST (with cross-repository mount)/PATCH (chunked or not)/PUT,
manifests GET/HEAD/PUT/DELETE, tags/list with `n`/`last` and `Link` pagination. Every blob and
manifest is digest-checked as distribution does, and a manifest naming an absent blob is refused.

Auth, as chosen at start: none, `basic` (every request needs a user, like distribution's htpasswd)
or `token` (a Bearer challenge whose realm is this server's own /token; anonymous pull allowed unless
`anonymous_pull` is False). Faults a real registry cannot be asked for: `fail_path`/`fail_times`/
`fail_status`/`retry_after`, `drop_blobs` (half a blob, then the connection closes), `narrow_tokens`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlencode, urlparse

from tests.servers.base import RecordingServer

SERVICE = "labcheck-inprocess-registry"
IMAGE_MEDIA_TYPES = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
LIST_MEDIA_TYPES = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
UPLOAD = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)$")
ROUTE = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<reference>[^/]+)$")
TAGS = re.compile(r"^/v2/(?P<name>.+)/tags/list$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Repository:
    blobs: set[str] = field(default_factory=set)
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # digest -> (bytes, media type)
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest


@dataclass(frozen=True)
class Answer:
    """One answered request, as an access log line: method, path with query, status."""

    method: str
    path: str
    status: int


class InProcessRegistry(RecordingServer):
    """Serves on 127.0.0.1 (HTTPS when tls_dir holds server.crt/server.key); a context manager."""

    def __init__(self, *, tls_dir: Path | None = None, auth: Literal["basic", "token"] | None = None,
                 users: dict[str, str] | None = None) -> None:
        super().__init__(_RegistryHandler, tls_dir=tls_dir)
        self.auth = auth
        self.users = users or {}
        self.anonymous_pull = True  # token auth only: anonymous users get pull tokens
        self.token_field = "token"  # or "access_token" (OAuth2 style)
        self.expires_in: int | None = 300
        self.narrow_tokens = 0  # the next N tokens grant nothing (-> insufficient_scope)
        self.token_requests: list[dict] = []
        self.fail_path, self.fail_times, self.fail_status = "", 0, 503
        self.retry_after: str | None = None
        self.drop_blobs = False
        self.answers: list[Answer] = []
        self.blobs: dict[str, bytes] = {}
        self.repositories: dict[str, Repository] = {}
        self.uploads: dict[str, tuple[str, bytearray]] = {}
        self._tokens: dict[str, tuple[float, set[tuple[str, str]]]] = {}  # token -> (expiry, {(repo, action)})
        self.state = threading.RLock()

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    # --- seeding and inspection, for tests -------------------------------------------------------

    def repository(self, name: str) -> Repository:
        with self.state:
            return self.repositories.setdefault(name, Repository())

    def add_blob(self, name: str, data: bytes) -> str:
        digest = sha256(data)
        with self.state:
            self.blobs[digest] = data
            self.repository(name).blobs.add(digest)
        return digest

    def add_manifest(self, name: str, data: bytes, media_type: str, *tags: str) -> str:
        digest = sha256(data)
        with self.state:
            repository = self.repository(name)
            repository.manifests[digest] = (data, media_type)
            repository.tags.update({tag: digest for tag in tags})
        return digest

    def answered(self, name: str) -> list[Answer]:
        """The access log of one repository."""
        with self.state:
            return [a for a in self.answers if a.path.startswith(f"/v2/{name}/")]

    def issue(self, access: set[tuple[str, str]]) -> str:
        token = secrets.token_urlsafe(24)
        with self.state:
            self._tokens[token] = (time.monotonic() + (self.expires_in or 60), access)
        return token

    # --- decisions the handler asks for ---------------------------------------------------------

    def should_fail(self, path: str) -> bool:
        with self.state:
            if self.fail_path and self.fail_path in path and self.fail_times > 0:
                self.fail_times -= 1
                return True
        return False

    def user(self, header: str) -> str | None | Literal[False]:
        """The user of a Basic Authorization header, None without one, False when it is wrong."""
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode(errors="replace").partition(":")
        return user if password and self.users.get(user) == password else False

    def grant(self, user: str | None, scopes: list[str]) -> set[tuple[str, str]]:
        with self.state:
            if self.narrow_tokens > 0:
                self.narrow_tokens -= 1
                return set()
        allowed = {"pull", "push"} if user else ({"pull"} if self.anonymous_pull else set())
        access = set()
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository":
                access |= {(name, a) for a in actions.split(",") if a in allowed}
        return access

    def token_allows(self, header: str, needed: list[tuple[str, str]]) -> bool | None:
        """True when the Bearer token grants every (repository, action); None when it is unknown or expired."""
        if not header.startswith("Bearer "):
            return None
        with self.state:
            expiry, access = self._tokens.get(header[7:], (0.0, set()))
        if expiry < time.monotonic():
            return None
        return all(n in access for n in needed)


class _RegistryHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "labcheck-inprocess-registry"

    def log_message(self, format: str, *args: object) -> None:
        pass

    @property
    def registry(self) -> InProcessRegistry:
        return self.server.owner  # type: ignore[attr-defined]

    def send_response(self, code: int, message: str | None = None) -> None:
        with self.registry.state:
            self.registry.answers.append(Answer(self.command, self.path, code))
        super().send_response(code, message)

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    # --- plumbing ---------------------------------------------------------------------------------

    def _body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None when the client went away midway."""
        try:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"x", 16)
                    if size == 0:
                        self.rfile.readline()
                        return bytes(body)
                    chunk = self.rfile.read(size + 2)
                    if len(chunk) != size + 2:
                        return None
                    body += chunk[:-2]
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else b""
            return data if len(data) == length else None
        except (ValueError, OSError):
            return None

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    # --- auth ---------------------------------------------------------------------------------------

    def _challenge(self, scope: str = "", error: str = "") -> str:
        if self.registry.auth == "basic":
            return 'Basic realm="labcheck in-process registry"'
        params = [f'realm="{self.registry.realm}"', f'service="{SERVICE}"']
        if scope:
            params.append(f'scope="{scope}"')
        if error:
            params.append(f'error="{error}"')
        return "Bearer " + ",".join(params)

    def _authorised(self, needed: list[tuple[str, str]]) -> bool:
        """Whether the request may go on; when not, the 401 has been sent."""
        registry, header = self.registry, self.headers.get("Authorization", "")
        if registry.auth is None:
            return True
        if registry.auth == "basic":
            if registry.user(header):
                return True
            self._error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": self._challenge()})
            return False
        allowed = registry.token_allows(header, needed) if needed else header.startswith("Bearer ")
        if allowed:
            return True
        scope = " ".join(f"repository:{name}:{action}" for name, action in needed)
        error = "insufficient_scope" if allowed is False else ""
        self._error(401, "UNAUTHORIZED", "authentication required",
                    {"WWW-Authenticate": self._challenge(scope, error)})
        return False

    def _token(self, query: dict[str, list[str]]) -> None:
        registry = self.registry
        user = registry.user(self.headers.get("Authorization", ""))
        with registry.state:
            registry.token_requests.append({"scopes": query.get("scope", []), "user": user,
                                            "service": query.get("service", [""])[0]})
        if user is False or (user is None and not registry.anonymous_pull):
            return self._send(401, b'{"details": "invalid username or password"}', {"Content-Type": "application/json"})
        body: dict = {registry.token_field: registry.issue(registry.grant(user, query.get("scope", [])))}
        if registry.expires_in is not None:
            body["expires_in"] = registry.expires_in
        self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    # --- routing ------------------------------------------------------------------------------------

    def _handle(self) -> None:
        registry = self.registry
        registry.record(self)
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/token" and registry.auth == "token" and self.command == "GET":
            return self._token(query)
        if registry.should_fail(self.path):
            self._body()
            return self._error(registry.fail_status, "UNAVAILABLE", "injected fault",
                               {"Retry-After": registry.retry_after} if registry.retry_after else None)
        if url.path == "/v2/" and self.command in ("GET", "HEAD"):
            return self._send(200, b"{}") if self._authorised([]) else None
        write = self.command in ("POST", "PATCH", "PUT", "DELETE")
        if match := UPLOAD.match(url.path):
            name = match["name"]
            needed = [(name, "pull"), (name, "push")]
            if "mount" in query and "from" in query:
                needed.append((query["from"][0], "pull"))
            body = self._body() if write else b""
            if not self._authorised(needed):
                return None
            if body is None:
                return self._abandon(match["id"])
            return self._upload(name, match["id"], query, body)
        if match := ROUTE.match(url.path):
            name = match["name"]
            body = self._body() if write else b""
            if not self._authorised([(name, "pull"), (name, "push")] if write else [(name, "pull")]):
                return None
            if body is None:
                return None
            if match["kind"] == "blobs":
                return self._blob(name, match["reference"])
            return self._manifest(name, match["reference"], body)
        if match := TAGS.match(url.path):
            if self._authorised([(match["name"], "pull")]):
                self._tags(match["name"], query)
            return None
        self._error(404, "NOT_FOUND", "no such endpoint")

    # --- blobs and uploads -------------------------------------------------------------------------

    def _blob(self, name: str, digest: str) -> None:
        registry = self.registry
        with registry.state:
            known = digest in registry.repositories.get(name, Repository()).blobs
            data = registry.blobs.get(digest, b"")
        if self.command == "DELETE" or self.command not in ("GET", "HEAD"):
            return self._error(405, "UNSUPPORTED", "blobs are only read here")
        if not known:
            return self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest,
                   "Content-Length": str(len(data))}
        if self.command == "GET" and registry.drop_blobs and len(data) > 1:
            self.send_response(200)
            for header, value in headers.items():
                self.send_header(header, value)
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return None
        self._send(200, data, headers)

    def _location(self, name: str, upload: str, received: int) -> dict[str, str]:
        return {"Location": f"/v2/{name}/blobs/uploads/{upload}", "Docker-Upload-UUID": upload,
                "Range": f"0-{max(received - 1, 0)}"}

    def _upload(self, name: str, upload: str, query: dict[str, list[str]], body: bytes) -> None:
        registry = self.registry
        if self.command == "POST" and not upload:
            if "mount" in query and "from" in query:
                digest, source = query["mount"][0], query["from"][0]
                with registry.state:
                    if digest in registry.repositories.get(source, Repository()).blobs:
                        registry.repository(name).blobs.add(digest)
                        return self._send(201, headers={"Location": f"/v2/{name}/blobs/{digest}",
                                                        "Docker-Content-Digest": digest})
            upload = secrets.token_hex(16)
            with registry.state:
                registry.uploads[upload] = (name, bytearray())
            return self._send(202, headers=self._location(name, upload, 0))
        with registry.state:
            session = registry.uploads.get(upload)
        if session is None or session[0] != name:
            return self._error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        data = session[1]
        if self.command == "DELETE":
            with registry.state:
                registry.uploads.pop(upload, None)
            return self._send(204)
        if self.command == "PATCH":
            data += body
            return self._send(202, headers=self._location(name, upload, len(data)))
        if self.command == "PUT":
            data += body
            digest = query.get("digest", [""])[0]
            if sha256(bytes(data)) != digest:
                return self._error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
            with registry.state:
                registry.uploads.pop(upload, None)
                registry.blobs[digest] = bytes(data)
                registry.repository(name).blobs.add(digest)
            return self._send(201, headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})
        self._error(405, "UNSUPPORTED", f"{self.command} of an upload")

    def _abandon(self, upload: str) -> None:
        """The client went away in the middle of a body: the session keeps what it had, the connection ends."""
        self.close_connection = True

    # --- manifests and tags ------------------------------------------------------------------------

    def _manifest(self, name: str, reference: str, body: bytes) -> None:
        registry = self.registry
        with registry.state:
            repository = registry.repositories.get(name, Repository())
            digest = repository.tags.get(reference, reference)
            stored = repository.manifests.get(digest)
        if self.command in ("GET", "HEAD"):
            if stored is None:
                return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            data, media_type = stored
            return self._send(200, data, {"Content-Type": media_type, "Docker-Content-Digest": digest,
                                          "Content-Length": str(len(data))})
        if self.command == "DELETE":
            if stored is None or reference != digest:
                return self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            with registry.state:
                del repository.manifests[digest]
                repository.tags = {t: d for t, d in repository.tags.items() if d != digest}
            return self._send(202)
        if self.command != "PUT":
            return self._error(405, "UNSUPPORTED", f"{self.command} of a manifest")
        media_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        digest = sha256(body)
        if reference.startswith("sha256:") and reference != digest:
            return self._error(400, "DIGEST_INVALID", "provided digest did not match the manifest")
        try:
            missing = self._missing_references(name, json.loads(body), media_type)
        except (ValueError, KeyError, TypeError):
            return self._error(400, "MANIFEST_INVALID", "manifest invalid")
        if missing:
            return self._error(400, "MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {missing[0]}")
        registry.add_manifest(name, body, media_type, *([] if reference.startswith("sha256:") else [reference]))
        self._send(201, headers={"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest})

    def _missing_references(self, name: str, manifest: dict, media_type: str) -> list[str]:
        repository = self.registry.repository(name)
        if media_type in LIST_MEDIA_TYPES:
            return [m["digest"] for m in manifest["manifests"] if m["digest"] not in repository.manifests]
        if media_type in IMAGE_MEDIA_TYPES:
            wanted = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
            return [d for d in wanted if d not in repository.blobs]
        raise ValueError(f"unsupported manifest media type {media_type!r}")

    def _tags(self, name: str, query: dict[str, list[str]]) -> None:
        with self.registry.state:
            repository = self.registry.repositories.get(name)
            tags = sorted(repository.tags) if repository else None
        if tags is None:
            return self._error(404, "NAME_UNKNOWN", "repository name not known to registry")
        last = query.get("last", [""])[0]
        rest = [t for t in tags if t > last]
        size = int(query.get("n", [str(len(rest) or 1)])[0])
        page = rest[:size]
        headers = {"Content-Type": "application/json"}
        if len(rest) > size and page:
            headers["Link"] = f'</v2/{name}/tags/list?{urlencode({"last": page[-1], "n": size})}>; rel="next"'
        self._send(200, json.dumps({"name": name, "tags": page}).encode(), headers)
