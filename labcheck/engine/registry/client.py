"""A client of one repository on a registry speaking the Registry HTTP API v2 (distribution spec)."""

from __future__ import annotations

import base64
import email.utils
import logging
import random
import re
import ssl
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator
from urllib.parse import urlencode, urljoin, urlparse

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.exceptions import InsecureRequestWarning

from labcheck.engine.registry.credentials import (
    Challenge,
    challenge_error,
    credentials_for,
    parse_challenges,
)
from labcheck.engine.base.errors import AuthenticationError, ImageNotFoundError, RegistryError
from labcheck.engine.base.options import Credentials, SideOptions
from labcheck.engine.registry.tls import ssl_context_for
from labcheck.errors import LabcheckError

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
TEMPORARY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "labcheck (containers/image compatible)"
TIMEOUT = (30, 300)  # connect, read (seconds)
MAX_BACKOFF = 30.0
MAX_RETRY_AFTER = 60.0
TOKEN_DEFAULT_LIFETIME = 60  # seconds, when the token server gives no expires_in (token spec)
CREDENTIALS_HINT = "pass credentials with --creds/--src-creds/--dest-creds or an auth file"
TLS_HINT = ("trust the registry's CA (SSL_CERT_FILE, --cert-dir, /etc/containers/certs.d/HOST:PORT/) "
            "or use --tls-verify=false")

log = logging.getLogger(__name__)
# tls_verify=False is the user's explicit choice; urllib3 would warn on every request.
warnings.filterwarnings("ignore", category=InsecureRequestWarning)


class _TrustAdapter(HTTPAdapter):
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


def registry_host(domain: str) -> str:
    """Docker Hub's API lives on registry-1.docker.io."""
    return "registry-1.docker.io" if domain == "docker.io" else domain


@dataclass
class _Token:
    value: str
    expires_at: float  # time.monotonic()


@dataclass
class RegistryClient:
    """One repository on one registry: ping, auth, manifests, blobs, uploads, tags.

    Safe to share between threads. Credentials never appear in its repr, errors or logs.
    """

    registry: str  # host[:port] as in the reference (docker.io for Docker Hub)
    repository: str  # path within the registry, e.g. "library/fedora"
    opts: SideOptions = field(default_factory=SideOptions, repr=False)
    push: bool = False  # ask for push scope as well as pull
    insecure: bool = False  # registries.conf insecure=true for this registry
    retry_delay: float = 1.0  # first backoff in seconds, doubled per attempt (with jitter)
    _session: requests.Session = field(init=False, repr=False)
    _base_url: str | None = field(default=None, init=False, repr=False)
    _challenge: Challenge | None = field(default=None, init=False, repr=False)
    _tokens: dict[str, _Token] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _creds: Credentials | None = field(default=None, init=False, repr=False)
    _creds_loaded: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self._session = requests.Session()
        # No environment magic from requests: REQUESTS_CA_BUNDLE must not replace our trust, and
        # ~/.netrc must not add credentials. Proxies from the environment are applied per request.
        self._session.trust_env = False
        self._session.headers["User-Agent"] = USER_AGENT
        if self.verify_tls:
            context = ssl_context_for(registry_host(self.registry), cert_dir=self.opts.cert_dir, ca_file=self.opts.ca_file)
            self._session.mount("https://", _TrustAdapter(context, pool_maxsize=16))
        else:
            self._session.mount("https://", HTTPAdapter(pool_maxsize=16))
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

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def close(self) -> None:
        self._session.close()

    # --- connection and auth -------------------------------------------------------------

    def base_url(self) -> str:
        """Ping /v2/ over https (then http, when TLS verification is off) and remember what works."""
        if self._base_url is None:
            host = registry_host(self.registry)
            schemes = ["https"] if self.verify_tls else ["https", "http"]
            errors: list[RegistryError] = []
            for scheme in schemes:
                try:
                    self._ping(f"{scheme}://{host}")
                except RegistryError as exc:
                    errors.append(exc)
                    continue
                self._base_url = f"{scheme}://{host}"
                break
            else:
                raise errors[0]
        return self._base_url

    def _ping(self, url: str) -> None:
        response = self._send("GET", f"{url}/v2/", auth=False)
        if response.status_code == 401:
            self._remember_challenge(response)
        elif response.status_code not in (200, 404):
            raise _error_from(response, f"pinging container registry {self.registry}")
        response.close()

    def _remember_challenge(self, response: requests.Response) -> Challenge | None:
        challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
        preferred = [c for c in challenges if c.scheme == "bearer"] or [c for c in challenges if c.scheme == "basic"]
        self._challenge = preferred[0] if preferred else None
        return self._challenge

    def _scopes(self, extra_scopes: Iterable[str]) -> list[str]:
        actions = "pull,push" if self.push else "pull"
        return [f"repository:{self.repository}:{actions}", *extra_scopes]

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
        return {"Authorization": f"Bearer {self._token(self._scopes(extra_scopes))}"}

    def _token(self, scopes: list[str]) -> str:
        """A cached Bearer token for scopes, fetched from the challenge's realm when absent or stale."""
        key = " ".join(scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached.expires_at > time.monotonic():
                return cached.value
            token = self._fetch_token(scopes)
            self._tokens[key] = token
            return token.value

    def _forget_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def _fetch_token(self, scopes: list[str]) -> _Token:
        assert self._challenge is not None
        params = self._challenge.params
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.registry} sent a Bearer challenge without a realm")
        query: list[tuple[str, str]] = [("service", params["service"])] if params.get("service") else []
        query.extend(("scope", s) for s in scopes)
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        creds = self.credentials
        basic = (creds.username, creds.password) if creds else None
        started = time.monotonic()
        response = self._send("GET", url, auth=False, basic=basic)
        if response.status_code in (401, 403):
            response.close()
            who = f"the credentials of user {creds.username!r}" if creds else "anonymous access"
            raise AuthenticationError(
                f"authenticating to {self.registry}: the token server refused {who} "
                f"({response.status_code})",
                status=response.status_code, method="GET", url=_safe_url(url),
                hint=CREDENTIALS_HINT if creds is None else "check the user name and password",
            )
        if response.status_code != 200:
            raise _error_from(response, f"fetching a token for {self.registry}")
        return _parse_token(response, self.registry, started)

    # --- requests with retries -----------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        auth: bool = True,
        basic: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | Iterator[bytes] | None = None,
        stream: bool = False,
        extra_scopes: Iterable[str] = (),
        retry: bool = True,
    ) -> requests.Response:
        """Send one request; retry temporary failures with backoff; never retry 401/403/404."""
        attempts = 1 + (max(self.opts.retry_times, 0) if retry and _rewindable(data) else 0)
        for attempt in range(1, attempts + 1):
            all_headers = dict(headers or {})
            if auth:
                all_headers.update(self._auth_header(extra_scopes))
            response, failure = self._attempt(method, url, all_headers, data, stream, basic)
            if failure is not None:
                if failure.temporary and attempt < attempts:
                    self._backoff(attempt, None)
                    continue
                raise failure
            assert response is not None
            log.debug("%s %s -> %d (attempt %d)", method, _safe_url(url), response.status_code, attempt)
            if response.status_code in TEMPORARY_STATUSES and attempt < attempts:
                retry_after = response.headers.get("Retry-After")
                response.close()
                self._backoff(attempt, retry_after)
                continue
            return response
        raise AssertionError("unreachable")

    def _attempt(
        self, method: str, url: str, headers: dict[str, str], data: Any, stream: bool,
        basic: tuple[str, str] | None,
    ) -> tuple[requests.Response | None, RegistryError | None]:
        """One HTTP exchange. Failures are returned, not raised, so that the error raised later
        has no link (__context__) to requests' exception, which holds the request's headers."""
        try:
            return self._session.request(
                method, url, headers=headers, data=data, stream=stream, auth=basic, timeout=TIMEOUT,
                allow_redirects=True, verify=self.verify_tls, proxies=get_environ_proxies(url),
            ), None
        except requests.exceptions.SSLError as exc:
            return None, _tls_error(method, url, exc)
        except requests.exceptions.RequestException as exc:
            reason = _connection_reason(exc)
        return None, RegistryError(
            f"{method} {_safe_url(url)}: {reason}", method=method, url=_safe_url(url), temporary=True,
            hint=None if reason != "connection refused" else "is the registry running at that address?",
        )

    def _backoff(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.retry_delay * 2.0 ** (attempt - 1), MAX_BACKOFF) * (0.5 + random.random() / 2)
        if retry_after:
            delay = max(delay, min(_parse_retry_after(retry_after), MAX_RETRY_AFTER))
        log.debug("retrying in %.2fs", delay)
        time.sleep(delay)

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.base_url() + path_or_url

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        headers: dict[str, str] | None = None,
        data: bytes | Iterator[bytes] | None = None,
        stream: bool = False,
        extra_scopes: Iterable[str] = (),
    ) -> requests.Response:
        """An authenticated request. A 401 is answered once: a new challenge, an expired token or
        `insufficient_scope` get one retry with fresh credentials; a second 401 is an
        AuthenticationError. Other statuses are the caller's to handle."""
        url = self._url(path_or_url)
        kwargs: dict[str, Any] = dict(headers=headers, data=data, stream=stream, extra_scopes=extra_scopes)
        response = self._send(method, url, **kwargs)
        if response.status_code != 401:
            return response
        challenge_before = self._challenge
        challenge = self._remember_challenge(response)
        response.close()
        if _rewindable(data) and self._worth_retrying(challenge_before, challenge):
            response = self._send(method, url, **kwargs)
            if response.status_code != 401:
                return response
            challenge = self._remember_challenge(response) or challenge
            response.close()
        raise self._auth_failure(method, url, challenge)

    def _worth_retrying(self, before: Challenge | None, now: Challenge | None) -> bool:
        if now is None or self.opts.registry_token:
            return False
        if now.scheme == "bearer":
            self._forget_tokens()  # expired, revoked or too narrow: a fresh token may do
            return True
        # Basic: sending the same credentials again cannot help.
        return before is None or before.scheme != "basic"

    def _auth_failure(self, method: str, url: str, challenge: Challenge | None) -> AuthenticationError:
        creds = self.credentials
        error = challenge_error(challenge)
        if error == "insufficient_scope":
            what = f"the registry denied {'push' if self.push else 'pull'} access to {self.repository} (insufficient_scope)"
            hint = "the account may lack the permission" if creds else CREDENTIALS_HINT
        elif creds is None:
            what, hint = "authentication required", CREDENTIALS_HINT
        else:
            what, hint = f"the registry refused the credentials of user {creds.username!r}", "check the user name and password"
        return AuthenticationError(f"{method} {_safe_url(url)}: {what}", status=401, method=method,
                                   url=_safe_url(url), hint=hint,
                                   diagnostics=[{"code": error}] if error else None)

    # --- manifests ---------------------------------------------------------------------------

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        """The manifest bytes (as served) and media type of a tag or digest."""
        response = self.request("GET", f"/v2/{self.repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 404:
            raise _not_found(response, f"reading manifest {reference} in {self.name}: manifest unknown",
                             "check the image name and tag")
        if response.status_code != 200:
            raise _error_from(response, f"reading manifest {reference} in {self.name}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return response.content, media_type

    def manifest_digest(self, reference: str) -> str | None:
        """HEAD a manifest: its Docker-Content-Digest, or None when absent."""
        response = self.request("HEAD", f"/v2/{self.repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _error_from(response, f"checking manifest {reference} in {self.name}")
        return response.headers.get("Docker-Content-Digest")

    def put_manifest(self, reference: str, manifest: bytes, media_type: str) -> str:
        """Upload a manifest under a tag or digest with its media type; returns the registry's digest."""
        response = self.request(
            "PUT", f"/v2/{self.repository}/manifests/{reference}",
            headers={"Content-Type": media_type}, data=manifest,
        )
        if response.status_code not in (200, 201, 202):
            raise _error_from(response, f"writing manifest {reference} to {self.name}")
        response.close()
        return response.headers.get("Docker-Content-Digest", "")

    def delete_manifest(self, digest: str) -> None:
        response = self.request("DELETE", f"/v2/{self.repository}/manifests/{digest}")
        response.close()
        if response.status_code not in (200, 202, 404):
            raise _error_from(response, f"deleting manifest {digest} in {self.name}")

    # --- blobs -------------------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        """HEAD a blob: its size, or None when the repository does not have it."""
        response = self.request("HEAD", f"/v2/{self.repository}/blobs/{digest}")
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _error_from(response, f"checking blob {digest} in {self.name}")
        return int(response.headers.get("Content-Length", "-1"))

    def get_blob(self, digest: str) -> tuple[BinaryIO, int]:
        """A streaming reader of a blob and its size (-1 when the registry does not say).

        A connection lost mid-blob raises RegistryError(temporary=True) from read()."""
        response = self.request("GET", f"/v2/{self.repository}/blobs/{digest}", stream=True)
        if response.status_code == 404:
            raise _not_found(response, f"reading blob {digest} in {self.name}: blob unknown")
        if response.status_code != 200:
            raise _error_from(response, f"reading blob {digest} in {self.name}")
        size = int(response.headers.get("Content-Length", "-1"))
        return _ResponseReader(response, size), size  # type: ignore[return-value]

    def mount_blob(self, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; True when the registry now has the blob in this repository."""
        query = urlencode({"mount": digest, "from": from_repository})
        try:
            response = self.request(
                "POST", f"/v2/{self.repository}/blobs/uploads/?{query}",
                extra_scopes=[f"repository:{from_repository}:pull"],
            )
        except AuthenticationError:
            return False  # no pull access to the other repository: upload instead
        response.close()
        if response.status_code == 201:
            return True
        if response.status_code == 202:  # the registry started an ordinary upload instead
            self._cancel_location(self._location(response))
        return False

    def upload_blob(self, chunks: Iterable[bytes | memoryview], digest: str, *, size: int = -1) -> int:
        """Streaming upload: POST a session, PATCH the bytes, PUT ?digest=. Returns the byte count;
        on failure the upload session is cancelled.

        Bytes that come as one chunk go in one PATCH with a Content-Length, retried here like any
        request. More chunks stream in one PATCH with chunked encoding (as skopeo does): no buffering,
        but such a body cannot be rewound, so that PATCH is never retried here; the copy pipeline
        retries the whole blob. A chunk may be a view that is reused once the next one is asked for.
        With size (when known), that PATCH has a Content-Length instead of chunked encoding.
        """
        response = self.request("POST", f"/v2/{self.repository}/blobs/uploads/")
        if response.status_code != 202:
            raise _error_from(response, f"starting the upload of {digest} to {self.name}")
        location = self._location(response)
        total = 0
        try:
            pending = iter(chunks)
            first = bytes(next(pending, b""))
            second = next(pending, None)
            if second is None:
                if first:
                    location = self._patch(location, first, {"Content-Range": f"0-{len(first) - 1}"})
                total = len(first)
            else:
                counter = _Counted([first, second], pending, size)
                try:
                    location = self._patch(location, counter, {})
                except _SourceFailed:
                    pass
                if counter.failure is not None:
                    raise counter.failure  # as the source raised it, not chained to urllib3's handling
                total = counter.total
            separator = "&" if "?" in location else "?"
            response = self.request("PUT", f"{location}{separator}{urlencode({'digest': digest})}",
                                    headers={"Content-Length": "0"}, data=b"")
            if response.status_code not in (201, 204):
                raise _error_from(response, f"finishing the upload of {digest} to {self.name}")
            response.close()
        except BaseException:
            self._cancel_location(location)
            raise
        return total

    def _patch(self, location: str, data: bytes | _Counted, headers: dict[str, str]) -> str:
        response = self.request("PATCH", location, data=data,  # type: ignore[arg-type]
                                headers={"Content-Type": "application/octet-stream", **headers})
        if response.status_code != 202:
            raise _error_from(response, f"uploading a blob to {self.name}")
        return self._location(response)

    def _location(self, response: requests.Response) -> str:
        location = response.headers.get("Location")
        response.close()
        if not location:
            raise RegistryError(f"registry {self.registry} started an upload without a Location header")
        return urljoin(self.base_url() + "/", location)

    def _cancel_location(self, location: str) -> None:
        try:
            self.request("DELETE", location).close()
        except RegistryError:
            pass  # best effort: the registry garbage-collects abandoned uploads

    # --- tags --------------------------------------------------------------------------------

    def list_tags(self, *, page_size: int | None = None) -> list[str]:
        """Every tag of the repository, following Link pagination (page_size asks for `n=` per page)."""
        tags: list[str] = []
        path: str | None = f"/v2/{self.repository}/tags/list"
        if page_size:
            path += "?" + urlencode({"n": page_size})
        seen: set[str] = set()
        while path and path not in seen:
            seen.add(path)
            response = self.request("GET", path)
            if response.status_code == 404:
                raise _not_found(response, f"listing tags of {self.name}: repository unknown",
                                 "check the repository name")
            if response.status_code != 200:
                raise _error_from(response, f"listing tags of {self.name}")
            tags.extend(_json_field(response, "tags", self.registry) or [])
            path = _next_link(response.headers.get("Link", ""))
            response.close()
        return tags


class _SourceFailed(Exception):
    """Carries a failure of a request body's source through urllib3 and requests untouched: they would
    turn an OSError into a connection error of the registry."""


class _Counted:
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
            raise _SourceFailed() from None


class _ResponseReader:
    """A file-like reader over a streaming response's raw (undecoded) body; a short body or a
    lost connection raises RegistryError(temporary=True) instead of passing for the end."""

    def __init__(self, response: requests.Response, size: int) -> None:
        self._response = response
        self._size = size
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        try:
            chunk = self._response.raw.read(None if size < 0 else size, decode_content=False)
        except Exception:  # urllib3 raises its own types mid-stream
            chunk, failed = b"", True
        else:
            failed = False
        self._account(len(chunk), failed, ended=size != 0 and not chunk)
        return chunk

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """read() without copies: straight from http.client's response (urllib3's readinto copies),
        which still undoes chunked encoding; nothing is decoded, as in read()."""
        raw = self._response.raw
        fp = getattr(raw, "_fp", None)
        try:
            n = fp.readinto(buffer) if fp is not None else raw.readinto(buffer)
        except Exception:
            n, failed = 0, True
        else:
            failed = False
        self._account(n, failed, ended=len(buffer) != 0 and not n)
        return n

    def _account(self, n: int, failed: bool, *, ended: bool) -> None:
        """Count n bytes; a failure, or an end before the announced size, is a lost connection.
        Raised here, outside the except block, so the error has no __context__ from urllib3."""
        self._read += n
        if failed or (ended and 0 <= self._read < self._size):
            url = _safe_url(self._response.url)
            raise RegistryError(
                f"reading {url}: connection lost after {self._read} of {self._size} bytes",
                method="GET", url=url, temporary=True,
            )

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> "_ResponseReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_token(response: requests.Response, registry: str, started: float) -> _Token:
    """The token server's answer: `token` or `access_token`, and `expires_in` (default 60s)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    finally:
        response.close()
    if not isinstance(body, dict):
        raise RegistryError(f"the token server of {registry} answered with invalid JSON")
    value = body.get("token") or body.get("access_token")
    if not value or not isinstance(value, str):
        raise RegistryError(f"the token server of {registry} answered without a token")
    try:
        lifetime = float(body.get("expires_in") or TOKEN_DEFAULT_LIFETIME)
    except (TypeError, ValueError):
        lifetime = TOKEN_DEFAULT_LIFETIME
    # Re-fetch a little before the server's expiry (at most 10s, at most a quarter of the lifetime).
    return _Token(value, started + lifetime - min(10.0, lifetime / 4))


def _json_field(response: requests.Response, name: str, registry: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        response.close()
        raise RegistryError(f"registry {registry} answered {_safe_url(response.url)} with invalid JSON",
                            url=_safe_url(response.url))
    return body.get(name)


def _next_link(header: str) -> str | None:
    """The target of a `Link: <url>; rel="next"` header (RFC 8288), if any."""
    for part in header.split(","):
        match = re.match(r'\s*<([^>]*)>\s*;(.*)$', part)
        if match and re.search(r'rel\s*=\s*"?next"?', match.group(2)):
            return match.group(1)
    return None


def _rewindable(data: object) -> bool:
    return data is None or isinstance(data, (bytes, str))


def _safe_url(url: str) -> str:
    """A URL fit for messages and logs: no query (tokens, upload state) and no user:password@."""
    parsed = urlparse(url)
    netloc = parsed.netloc.rpartition("@")[2]
    return parsed._replace(netloc=netloc, query="", fragment="").geturl()


def _parse_retry_after(value: str) -> float:
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(parsed.timestamp() - time.time(), 0.0)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """exc and what it wraps (args, reason, cause/context), depth-first, each once."""
    stack, seen = [exc], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (*current.args, getattr(current, "reason", None), current.__cause__, current.__context__):
            if isinstance(nested, BaseException):
                stack.append(nested)


def _tls_error(method: str, url: str, exc: BaseException) -> RegistryError:
    verify = next((e for e in _chain(exc) if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is not None:
        reason = f"TLS verification failed: {verify.verify_message or 'certificate not trusted'}"
    else:
        ssl_error = next((e for e in _chain(exc) if isinstance(e, ssl.SSLError)), None)
        detail = getattr(ssl_error, "reason", None) or "handshake failed"
        reason = f"TLS handshake failed ({str(detail).lower().replace('_', ' ')})"
    return RegistryError(f"{method} {_safe_url(url)}: {reason}", method=method, url=_safe_url(url), hint=TLS_HINT)


def _connection_reason(exc: BaseException) -> str:
    for nested in _chain(exc):
        if isinstance(nested, ConnectionRefusedError):
            return "connection refused"
        if isinstance(nested, (TimeoutError, requests.exceptions.Timeout)):
            return "timed out"
        if isinstance(nested, (ConnectionResetError, BrokenPipeError)):
            return "connection reset by the server"
    text = str(exc)
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "no such host"
    if "Connection refused" in text:
        return "connection refused"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the server closed the connection"
    return f"connection failed ({exc.__class__.__name__})"


def _diagnostics(response: requests.Response) -> list[dict]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [d for d in errors if isinstance(d, dict)] if isinstance(errors, list) else []


def _not_found(response: requests.Response, message: str, hint: str | None = None) -> ImageNotFoundError:
    response.close()
    return ImageNotFoundError(message, hint=hint)


def _error_from(response: requests.Response, action: str) -> RegistryError:
    """A RegistryError with the registry's own diagnostics (errors[].code/message)."""
    try:
        diagnostics = _diagnostics(response) if response.request.method != "HEAD" else []
    finally:
        response.close()
    detail = "; ".join(f"{d.get('code', '')}: {d.get('message', '')}".strip(": ") for d in diagnostics)
    status = response.status_code
    cls = AuthenticationError if status in (401, 403) else RegistryError
    return cls(
        f"{action}: {status} {response.reason}" + (f" ({detail})" if detail else ""),
        status=status, method=response.request.method or "", url=_safe_url(response.url or ""),
        diagnostics=diagnostics, temporary=status in TEMPORARY_STATUSES,
        hint="HEAD responses have no body; GET the same URL for details" if response.request.method == "HEAD" else None,
    )
