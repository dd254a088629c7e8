"""A client of one repository on a registry speaking the Registry HTTP API v2 (distribution spec)."""

from __future__ import annotations

import base64
import email.utils
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Iterable, Iterator
from urllib.parse import urlencode, urljoin, urlparse

import requests
from requests.adapters import HTTPAdapter

from labcheck.engine.auth import Challenge, credentials_for, parse_challenges
from labcheck.engine.errors import AuthenticationError, ImageNotFoundError, RegistryError
from labcheck.engine.options import Credentials, SideOptions
from labcheck.engine.trust import ssl_context_for

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
    ]
)
TEMPORARY_STATUSES = {429, 502, 503, 504}
UPLOAD_CHUNK = 8 << 20
USER_AGENT = "labcheck (containers/image compatible)"


class _TrustAdapter(HTTPAdapter):
    """Uses our SSLContext for verification instead of requests' certifi bundle."""

    def __init__(self, context, **kwargs) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)

    def cert_verify(self, conn, url, verify, cert) -> None:
        if url.lower().startswith("https") and verify:
            conn.cert_reqs = "CERT_REQUIRED"
            conn.ca_certs = None
            conn.ca_cert_dir = None
        else:
            super().cert_verify(conn, url, verify, cert)


def registry_host(domain: str) -> str:
    """Docker Hub's API lives on registry-1.docker.io."""
    return "registry-1.docker.io" if domain == "docker.io" else domain


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class RegistryClient:
    """One repository on one registry: ping, auth, manifests, blobs, uploads, tags."""

    registry: str  # host[:port] as in the reference (docker.io for Docker Hub)
    repository: str  # path within the registry, e.g. "library/fedora"
    opts: SideOptions = field(default_factory=SideOptions)
    push: bool = False  # ask for push scope as well as pull
    insecure: bool = False  # registries.conf insecure=true for this registry
    _session: requests.Session = field(init=False, repr=False)
    _base_url: str | None = field(default=None, init=False, repr=False)
    _challenge: Challenge | None = field(default=None, init=False, repr=False)
    _tokens: dict[str, _Token] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _creds: Credentials | None = field(default=None, init=False, repr=False)
    _creds_loaded: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self._session = requests.Session()
        self._session.trust_env = True
        self._session.headers["User-Agent"] = USER_AGENT
        host = registry_host(self.registry)
        if self.verify_tls:
            adapter = _TrustAdapter(ssl_context_for(host, cert_dir=self.opts.cert_dir), pool_maxsize=16)
            self._session.verify = True
        else:
            adapter = HTTPAdapter(pool_maxsize=16)
            self._session.verify = False
        self._session.mount("https://", adapter)
        self._session.mount("http://", HTTPAdapter(pool_maxsize=16))

    @property
    def verify_tls(self) -> bool:
        if self.opts.tls_verify is not None:
            return self.opts.tls_verify
        return not self.insecure

    @property
    def credentials(self) -> Credentials | None:
        if not self._creds_loaded:
            self._creds = credentials_for(self.registry, self.repository, self.opts)
            self._creds_loaded = True
        return self._creds

    def close(self) -> None:
        self._session.close()

    # --- connection and auth -------------------------------------------------------------

    def base_url(self) -> str:
        """Ping /v2/ over https (and http when TLS verification is off) and remember what works."""
        if self._base_url is None:
            host = registry_host(self.registry)
            schemes = ["https"] if self.verify_tls else ["https", "http"]
            last_error: Exception | None = None
            for scheme in schemes:
                url = f"{scheme}://{host}"
                try:
                    response = self._send("GET", f"{url}/v2/", auth=False)
                except RegistryError as exc:
                    last_error = exc
                    continue
                if response.status_code == 401:
                    self._remember_challenge(response)
                elif response.status_code != 200 and response.status_code != 404:
                    last_error = _error_from(response, "pinging container registry")
                    continue
                response.close()
                self._base_url = url
                break
            else:
                assert last_error is not None
                raise last_error
        return self._base_url

    def _remember_challenge(self, response: requests.Response) -> None:
        challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
        preferred = [c for c in challenges if c.scheme == "bearer"] or [c for c in challenges if c.scheme == "basic"]
        self._challenge = preferred[0] if preferred else None

    def _scope(self) -> str:
        return f"repository:{self.repository}:{'pull,push' if self.push else 'pull'}"

    def _auth_header(self, extra_scopes: Iterable[str] = ()) -> dict[str, str]:
        if self.opts.registry_token:
            return {"Authorization": f"Bearer {self.opts.registry_token}"}
        challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            creds = self.credentials
            if creds is None:
                return {}
            raw = f"{creds.username}:{creds.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        scopes = [self._scope(), *extra_scopes]
        return {"Authorization": f"Bearer {self._token(scopes)}"}

    def _token(self, scopes: list[str], *, refresh: bool = False) -> str:
        assert self._challenge is not None
        key = " ".join(scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and not refresh and cached.expires_at > time.monotonic():
                return cached.value
            params = self._challenge.params
            realm = params.get("realm")
            if not realm:
                raise RegistryError(f"registry {self.registry} sent a Bearer challenge without a realm")
            query: list[tuple[str, str]] = []
            if params.get("service"):
                query.append(("service", params["service"]))
            query.extend(("scope", s) for s in scopes)
            creds = self.credentials
            auth = (creds.username, creds.password) if creds else None
            url = realm + ("&" if "?" in realm else "?") + urlencode(query)
            response = self._send("GET", url, auth=False, basic=auth)
            if response.status_code in (401, 403):
                raise AuthenticationError(
                    f"authenticating to {self.registry}: the token server refused "
                    f"{'the credentials' if creds else 'anonymous access'} ({response.status_code})",
                    status=response.status_code, method="GET", url=_strip_query(url),
                    hint=None if creds else "pass credentials with --creds or an auth file",
                )
            if response.status_code != 200:
                raise _error_from(response, "fetching a registry token")
            try:
                body = response.json()
            except ValueError:
                raise RegistryError(f"the token server of {self.registry} answered with invalid JSON") from None
            value = body.get("token") or body.get("access_token")
            if not value:
                raise RegistryError(f"the token server of {self.registry} answered without a token")
            expires_in = int(body.get("expires_in") or 60)
            # Re-fetch a little before the server's expiry.
            self._tokens[key] = _Token(value, time.monotonic() + max(expires_in - 10, 1))
            return value

    # --- requests with retries -----------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        auth: bool = True,
        basic: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data=None,
        stream: bool = False,
        extra_scopes: Iterable[str] = (),
        retry: bool = True,
    ) -> requests.Response:
        """Send one request; retry temporary failures with backoff; never retry 401/403/404."""
        attempts = 1 + (max(self.opts.retry_times, 0) if retry else 0)
        for attempt in range(attempts):
            all_headers = dict(headers or {})
            if auth:
                all_headers.update(self._auth_header(extra_scopes))
            try:
                response = self._session.request(
                    method, url, headers=all_headers, data=data, stream=stream,
                    auth=basic, timeout=(30, 300), allow_redirects=True,
                )
            # Exception chains are dropped (`from None`): they may carry request headers.
            except requests.exceptions.SSLError:
                raise RegistryError(
                    f"{method} {_strip_query(url)}: TLS verification failed",
                    method=method, url=_strip_query(url),
                    hint="trust the registry's CA (SSL_CERT_FILE, --cert-dir, /etc/containers/certs.d/) "
                    "or use --tls-verify=false",
                ) from None
            except requests.exceptions.RequestException as exc:
                if attempt + 1 < attempts and _rewindable(data):
                    self._backoff(attempt, None)
                    continue
                raise RegistryError(
                    f"{method} {_strip_query(url)}: {_connection_reason(exc)}",
                    method=method, url=_strip_query(url), temporary=True,
                ) from None
            if response.status_code in TEMPORARY_STATUSES and attempt + 1 < attempts and _rewindable(data):
                retry_after = response.headers.get("Retry-After")
                response.close()
                self._backoff(attempt, retry_after)
                continue
            return response
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: str | None) -> None:
        delay = min(2.0 ** attempt, 30.0) * (0.5 + random.random() / 2)
        if retry_after:
            delay = max(delay, _parse_retry_after(retry_after))
        time.sleep(min(delay, 60.0))

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        headers: dict[str, str] | None = None,
        data=None,
        stream: bool = False,
        extra_scopes: Iterable[str] = (),
    ) -> requests.Response:
        """An authenticated request; answers a 401 challenge once, and insufficient_scope once."""
        base = self.base_url()
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else base + path_or_url
        response = self._send(method, url, headers=headers, data=data, stream=stream, extra_scopes=extra_scopes)
        if response.status_code == 401 and _rewindable(data):
            had = self._challenge
            self._remember_challenge(response)
            header = response.headers.get("WWW-Authenticate", "")
            response.close()
            if self._challenge is not None and (had is None or "insufficient_scope" in header or had != self._challenge):
                if self._challenge.scheme == "bearer":
                    self._tokens.clear()
                response = self._send(method, url, headers=headers, data=data, stream=stream, extra_scopes=extra_scopes)
            else:
                response = self._send(method, url, headers=headers, data=data, stream=stream, extra_scopes=extra_scopes)
        if response.status_code == 401:
            creds = self.credentials
            response.close()
            raise AuthenticationError(
                f"{method} {_strip_query(url)}: authentication required"
                if creds is None else f"{method} {_strip_query(url)}: the registry refused the credentials for {creds.username}",
                status=401, method=method, url=_strip_query(url),
                hint="pass credentials with --creds/--src-creds/--dest-creds or an auth file" if creds is None else "check the user name and password",
            )
        return response

    # --- the API ---------------------------------------------------------------------------

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        """The manifest bytes (as served) and media type of a tag or digest."""
        response = self.request("GET", f"/v2/{self.repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 404:
            response.close()
            raise ImageNotFoundError(
                f"reading manifest {reference} in {self.registry}/{self.repository}: manifest unknown",
                hint="check the image name and tag",
            )
        if response.status_code != 200:
            raise _error_from(response, f"reading manifest {reference} in {self.registry}/{self.repository}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return response.content, media_type

    def manifest_digest(self, reference: str) -> str | None:
        """HEAD a manifest: its Docker-Content-Digest, or None when absent."""
        response = self.request("HEAD", f"/v2/{self.repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _error_from(response, f"checking manifest {reference}")
        return response.headers.get("Docker-Content-Digest")

    def put_manifest(self, reference: str, manifest: bytes, media_type: str) -> str:
        """Upload a manifest under a tag or digest; returns the registry's digest for it."""
        response = self.request(
            "PUT", f"/v2/{self.repository}/manifests/{reference}",
            headers={"Content-Type": media_type}, data=manifest,
        )
        if response.status_code not in (200, 201, 202):
            raise _error_from(response, f"writing manifest {reference} to {self.registry}/{self.repository}")
        response.close()
        return response.headers.get("Docker-Content-Digest", "")

    def blob_size(self, digest: str) -> int | None:
        """HEAD a blob: its size, or None when the repository does not have it."""
        response = self.request("HEAD", f"/v2/{self.repository}/blobs/{digest}")
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _error_from(response, f"checking blob {digest}")
        return int(response.headers.get("Content-Length", "-1"))

    def get_blob(self, digest: str) -> tuple[BinaryIO, int]:
        """A streaming reader of a blob and its size (-1 when the registry does not say)."""
        response = self.request("GET", f"/v2/{self.repository}/blobs/{digest}", stream=True)
        if response.status_code == 404:
            response.close()
            raise ImageNotFoundError(f"reading blob {digest} in {self.registry}/{self.repository}: blob unknown")
        if response.status_code != 200:
            raise _error_from(response, f"reading blob {digest}")
        response.raw.decode_content = False
        return _ResponseReader(response), int(response.headers.get("Content-Length", "-1"))

    def mount_blob(self, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; True when the registry now has the blob in this repository."""
        query = urlencode({"mount": digest, "from": from_repository})
        response = self.request(
            "POST", f"/v2/{self.repository}/blobs/uploads/?{query}",
            extra_scopes=[f"repository:{from_repository}:pull"],
        )
        response.close()
        if response.status_code == 201:
            return True
        if response.status_code == 202:
            self._cancel_upload(response)
        return False

    def upload_blob(self, chunks: Iterator[bytes], digest: str) -> None:
        """Streaming upload: POST a session, PATCH chunks, PUT ?digest= to finish."""
        response = self.request("POST", f"/v2/{self.repository}/blobs/uploads/")
        if response.status_code != 202:
            raise _error_from(response, f"starting the upload of {digest}")
        location = self._location(response)
        try:
            buffer = bytearray()
            for chunk in chunks:
                buffer += chunk
                if len(buffer) >= UPLOAD_CHUNK:
                    location = self._patch(location, bytes(buffer))
                    buffer.clear()
            if buffer:
                location = self._patch(location, bytes(buffer))
            separator = "&" if "?" in location else "?"
            response = self.request("PUT", f"{location}{separator}{urlencode({'digest': digest})}",
                                    headers={"Content-Length": "0"}, data=b"")
            if response.status_code not in (201, 204):
                raise _error_from(response, f"finishing the upload of {digest}")
            response.close()
        except BaseException:
            self._cancel_location(location)
            raise

    def _patch(self, location: str, data: bytes) -> str:
        response = self.request("PATCH", location, headers={"Content-Type": "application/octet-stream"}, data=data)
        if response.status_code != 202:
            raise _error_from(response, "uploading a blob chunk")
        return self._location(response)

    def _location(self, response: requests.Response) -> str:
        location = response.headers.get("Location")
        response.close()
        if not location:
            raise RegistryError(f"registry {self.registry} started an upload without a Location")
        return urljoin(self.base_url() + "/", location)

    def _cancel_upload(self, response: requests.Response) -> None:
        location = response.headers.get("Location")
        if location:
            self._cancel_location(urljoin(self.base_url() + "/", location))

    def _cancel_location(self, location: str) -> None:
        try:
            self.request("DELETE", location).close()
        except RegistryError:
            pass  # best effort: the registry garbage-collects abandoned uploads

    def list_tags(self) -> list[str]:
        """Every tag of the repository, following Link pagination."""
        tags: list[str] = []
        path: str | None = f"/v2/{self.repository}/tags/list"
        while path:
            response = self.request("GET", path)
            if response.status_code != 200:
                raise _error_from(response, f"listing tags of {self.registry}/{self.repository}")
            tags.extend(response.json().get("tags") or [])
            path = _next_link(response.headers.get("Link", ""))
            response.close()
        return tags

    def delete_manifest(self, digest: str) -> None:
        response = self.request("DELETE", f"/v2/{self.repository}/manifests/{digest}")
        response.close()
        if response.status_code not in (200, 202, 404):
            raise _error_from(response, f"deleting manifest {digest}")


class _ResponseReader:
    """A file-like reader over a streaming response's raw (undecoded) body."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response

    def read(self, size: int = -1) -> bytes:
        try:
            return self._response.raw.read(None if size < 0 else size, decode_content=False)
        except Exception:  # urllib3 raises its own types mid-stream
            raise RegistryError(f"reading from {_strip_query(self._response.url)}: connection lost",
                                temporary=True, url=_strip_query(self._response.url)) from None

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> "_ResponseReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _next_link(header: str) -> str | None:
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    return match.group(1) if match else None


def _rewindable(data) -> bool:
    return data is None or isinstance(data, (bytes, str))


def _strip_query(url: str) -> str:
    parsed = urlparse(url)
    return parsed._replace(query="", fragment="").geturl()


def _parse_retry_after(value: str) -> float:
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(parsed.timestamp() - time.time(), 0.0) if parsed else 0.0


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "no such host"
    return exc.__class__.__name__


def _error_from(response: requests.Response, action: str) -> RegistryError:
    """A RegistryError with the registry's own diagnostics (errors[].code/message)."""
    diagnostics: list[dict] = []
    try:
        diagnostics = list(response.json().get("errors") or [])
    except ValueError:
        pass
    finally:
        response.close()
    detail = "; ".join(f"{d.get('code', '')}: {d.get('message', '')}".strip(": ") for d in diagnostics if isinstance(d, dict))
    status = response.status_code
    cls = AuthenticationError if status in (401, 403) else RegistryError
    return cls(
        f"{action}: {status} {response.reason}" + (f" ({detail})" if detail else ""),
        status=status, method=response.request.method or "", url=_strip_query(response.url),
        diagnostics=diagnostics, temporary=status in TEMPORARY_STATUSES,
    )
