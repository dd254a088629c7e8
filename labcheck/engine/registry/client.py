"""A client of one repository on a registry speaking the Registry HTTP API v2 (distribution spec)."""

from __future__ import annotations

import base64
import http.client
import logging
import random
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator
from urllib.parse import urlencode, urljoin

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
import urllib3.exceptions
from urllib3.exceptions import InsecureRequestWarning

from labcheck.engine.base.errors import AuthenticationError, RegistryError, in_context
from labcheck.engine.base.options import Credentials, SideOptions
from labcheck.engine.registry.challenge import (
    Challenge,
    Token,
    challenge_error,
    parse_challenges,
    parse_token,
)
from labcheck.engine.registry.credentials import credentials_for
from labcheck.engine.registry.errors import (
    TEMPORARY_STATUSES,
    connection_reason,
    error_from,
    go_url_error,
    exception_chain,
    json_field,
    not_found,
    registry_text,
    response_diagnostics,
    tls_error,
)
from labcheck.engine.registry.http import (
    BodyTooLarge,
    ResponseReader,
    SourceFailed,
    TrustAdapter,
    UploadBody,
    next_link,
    parse_retry_after,
    read_limited,
    rewindable,
    safe_url,
)
from labcheck.engine.base.limits import MAX_MANIFEST, MAX_OTHER_BODY, MAX_TOKEN, size_text
from labcheck.engine.registry.tls import ssl_context_for

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
USER_AGENT = "labcheck (containers/image compatible)"
CONNECT_TIMEOUT = 30.0
# A write's answer may come late for a good reason (the registry hashes or moves a large upload
# before it answers the PUT): that wait is not a stall.
WRITE_ANSWER_TIMEOUT = 300.0
# Retried for any caller, as containers/image retries 429 (up to 5 times) below --retry-times.
TOO_MANY_REQUESTS_RETRIES = 5
MAX_BACKOFF = 30.0
MAX_RETRY_AFTER = 60.0
CREDENTIALS_HINT = "pass credentials with --creds/--src-creds/--dest-creds or an auth file"

log = logging.getLogger(__name__)
# tls_verify=False is the user's explicit choice; urllib3 would warn on every request.
warnings.filterwarnings("ignore", category=InsecureRequestWarning)


def registry_host(domain: str) -> str:
    """Docker Hub's API lives on registry-1.docker.io."""
    return "registry-1.docker.io" if domain == "docker.io" else domain


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
    retry_delay: float | None = None  # first backoff in seconds, doubled per attempt; None: opts.retry_delay
    _session: requests.Session = field(init=False, repr=False)
    _base_url: str | None = field(default=None, init=False, repr=False)
    _challenge: Challenge | None = field(default=None, init=False, repr=False)
    _tokens: dict[str, Token] = field(default_factory=dict, init=False, repr=False)
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
            self._session.mount("https://", TrustAdapter(context, pool_maxsize=16))
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
        failure: RegistryError | None = None
        try:
            response = self._send("GET", f"{url}/v2/", auth=False)
        except RegistryError as exc:
            failure = in_context(exc, f"pinging container registry {self.registry}")
        if failure is not None:  # raised here, so that it has no __context__
            raise failure
        if response.status_code == 401:
            self._remember_challenge(response)
        elif response.status_code not in (200, 404):
            raise error_from(response, f"pinging container registry {self.registry}")
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

    def _fetch_token(self, scopes: list[str]) -> Token:
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
        response = self._send("GET", url, auth=False, basic=basic, limit=MAX_TOKEN)
        if response.status_code in (401, 403):
            response.close()
            who = f"the credentials of user {creds.username!r}" if creds else "anonymous access"
            raise AuthenticationError(
                f"authenticating to {self.registry}: the token server refused {who} "
                f"({response.status_code})",
                status=response.status_code, method="GET", url=safe_url(url),
                hint=CREDENTIALS_HINT if creds is None else "check the user name and password",
            )
        if response.status_code != 200:
            raise error_from(response, f"fetching a token for {self.registry}")
        return parse_token(response, self.registry, started)

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
        limit: int = MAX_OTHER_BODY,
    ) -> requests.Response:
        """Send one request; retry temporary failures with backoff; never retry 401/403/404.

        Unless stream is set, the body is read here, at most limit bytes (a longer one is an error);
        a body lost halfway is retried like a lost connection.

        500 is not retried: containers/image retries 502, 503 and 504 (and 429, see below) and
        takes a 500, the registry's own failure, as final (containers/common's retry.IsErrorRetryable).
        """
        retries = max(self.opts.retry_times, 0) if retry and rewindable(data) else 0
        attempt = 0
        while True:
            attempt += 1
            all_headers = dict(headers or {})
            if auth:
                all_headers.update(self._auth_header(extra_scopes))
            response, failure = self._attempt(method, url, all_headers, data, stream, basic, limit)
            if failure is not None:
                if failure.temporary and attempt <= retries:
                    self._backoff(attempt, None)
                    continue
                raise failure
            assert response is not None
            log.debug("%s %s -> %d (attempt %d)", method, safe_url(url), response.status_code, attempt)
            status = response.status_code
            allowed = max(retries, TOO_MANY_REQUESTS_RETRIES) if status == 429 and rewindable(data) else retries
            if status in TEMPORARY_STATUSES and attempt <= allowed:
                retry_after = response.headers.get("Retry-After")
                response.close()
                self._backoff(attempt, retry_after)
                continue
            return response

    def _timeout(self, method: str) -> tuple[float, float]:
        """(connect, read) for requests: a read waits at most the stall timeout for each byte."""
        stall = self.opts.stall_timeout
        return CONNECT_TIMEOUT, stall if method in ("GET", "HEAD") else max(stall, WRITE_ANSWER_TIMEOUT)

    def _attempt(
        self, method: str, url: str, headers: dict[str, str], data: Any, stream: bool,
        basic: tuple[str, str] | None, limit: int,
    ) -> tuple[requests.Response | None, RegistryError | None]:
        """One HTTP exchange, with the body unless stream. Failures are returned, not raised, so that
        the error raised later has no link (__context__) to requests' exception, which holds the
        request's headers.

        Redirects are followed by requests, which drops the Authorization header when the target is
        another host (or port, or a plain-HTTP URL): credentials never follow a blob to its storage."""
        response: requests.Response | None = None
        try:
            response = self._session.request(
                method, url, headers=headers, data=data, stream=True, auth=basic, timeout=self._timeout(method),
                allow_redirects=True, verify=self.verify_tls, proxies=get_environ_proxies(url),
            )
            if not stream:
                read_limited(response, limit)
            return response, None
        except BodyTooLarge as exc:
            where = safe_url(response.url if response is not None else url)
            return None, RegistryError(
                f"{method} {where}: the answer is {exc.describe()} ({exc.size_seen} bytes or more); refusing to read it",
                method=method, url=where,
                hint=f"a registry serves at most {size_text(exc.limit)} here; it may be misbehaving or hostile",
            )
        except requests.exceptions.SSLError as exc:
            return None, tls_error(method, url, exc)
        except Exception as exc:  # requests', urllib3's or http.client's own types, mid-body too
            if response is not None:
                response.close()
            if not isinstance(exc, (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError,
                                    http.client.HTTPException)):
                raise
            reason = connection_reason(exc, url)
            if reason.endswith("i/o timeout") and not any(
                isinstance(e, (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError))
                for e in exception_chain(exc)
            ):
                reason = f"stalled (no data for {self.opts.stall_timeout:g}s)"
        where = safe_url(response.url if response is not None else url)
        return None, RegistryError(
            go_url_error(method, where, reason), method=method, url=where, temporary=True,
            hint="is the registry running at that address?" if reason.endswith("connection refused") else None,
        )

    def _backoff(self, attempt: int, retry_after: str | None) -> None:
        first = self.opts.retry_delay if self.retry_delay is None else self.retry_delay
        delay = min(first * 2.0 ** (attempt - 1), MAX_BACKOFF) * (0.5 + random.random() / 2)
        if retry_after:
            delay = max(delay, min(parse_retry_after(retry_after), MAX_RETRY_AFTER))
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
        action: str = "",
        limit: int = MAX_OTHER_BODY,
    ) -> requests.Response:
        """An authenticated request (action: what it is for, in containers/image's words, for errors;
        its body read, at most limit bytes, unless stream). A 401 is answered once: a new challenge, an expired token or
        `insufficient_scope` get one retry with fresh credentials; a second 401 is an
        AuthenticationError. Other statuses are the caller's to handle."""
        url = self._url(path_or_url)
        kwargs: dict[str, Any] = dict(headers=headers, data=data, stream=stream, extra_scopes=extra_scopes, limit=limit)
        response = self._send(method, url, **kwargs)
        if response.status_code != 401:
            return response
        challenge_before = self._challenge
        challenge = self._remember_challenge(response)
        diagnostics = response_diagnostics(response) if method != "HEAD" else []
        response.close()
        if rewindable(data) and self._worth_retrying(challenge_before, challenge):
            response = self._send(method, url, **kwargs)
            if response.status_code != 401:
                return response
            challenge = self._remember_challenge(response) or challenge
            diagnostics = response_diagnostics(response) if method != "HEAD" else diagnostics
            response.close()
        raise self._auth_failure(method, url, challenge, action or f"{method} {safe_url(url)}", diagnostics)

    def _worth_retrying(self, before: Challenge | None, now: Challenge | None) -> bool:
        if now is None or self.opts.registry_token:
            return False
        if now.scheme == "bearer":
            self._forget_tokens()  # expired, revoked or too narrow: a fresh token may do
            return True
        # Basic: sending the same credentials again cannot help.
        return before is None or before.scheme != "basic"

    def _auth_failure(self, method: str, url: str, challenge: Challenge | None, action: str,
                      diagnostics: list[dict]) -> AuthenticationError:
        creds = self.credentials
        error = challenge_error(challenge)
        if error == "insufficient_scope":
            hint = (f"the registry denied {'push' if self.push else 'pull'} access to {self.repository}: "
                    + ("the account may lack the permission" if creds else CREDENTIALS_HINT))
        elif creds is None:
            hint = CREDENTIALS_HINT
        else:
            hint = f"the registry refused the credentials of user {creds.username!r}: check the user name and password"
        return AuthenticationError(f"{action}: {registry_text(diagnostics, 401)}", status=401, method=method,
                                   url=safe_url(url), hint=hint,
                                   diagnostics=[{"code": error}] if error else diagnostics)

    # --- manifests ---------------------------------------------------------------------------

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        """The manifest bytes (as served) and media type of a tag or digest."""
        action = f"reading manifest {reference} in {self.name}"
        response = self.request("GET", f"/v2/{self.repository}/manifests/{reference}",
                                headers={"Accept": MANIFEST_ACCEPT}, action=action, limit=MAX_MANIFEST)
        if response.status_code == 404:
            raise not_found(response, action, "manifest unknown: manifest unknown", "check the image name and tag")
        if response.status_code != 200:
            raise error_from(response, action)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return response.content, media_type

    def manifest_digest(self, reference: str) -> str | None:
        """HEAD a manifest: its Docker-Content-Digest, or None when absent."""
        response = self.request("HEAD", f"/v2/{self.repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise error_from(response, f"checking manifest {reference} in {self.name}")
        return response.headers.get("Docker-Content-Digest")

    def put_manifest(self, reference: str, manifest: bytes, media_type: str) -> str:
        """Upload a manifest under a tag or digest with its media type; returns the registry's digest."""
        action = f"writing manifest: uploading manifest {reference} to {self.name}"
        response = self.request(
            "PUT", f"/v2/{self.repository}/manifests/{reference}",
            headers={"Content-Type": media_type}, data=manifest, action=action,
        )
        if response.status_code not in (200, 201, 202):
            raise error_from(response, action)
        response.close()
        return response.headers.get("Docker-Content-Digest", "")

    def delete_manifest(self, digest: str) -> None:
        response = self.request("DELETE", f"/v2/{self.repository}/manifests/{digest}")
        response.close()
        if response.status_code not in (200, 202, 404):
            raise error_from(response, f"deleting manifest {digest} in {self.name}")

    # --- blobs -------------------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        """HEAD a blob: its size, or None when the repository does not have it."""
        action = f"checking whether a blob {digest} exists in {self.name}"
        response = self.request("HEAD", f"/v2/{self.repository}/blobs/{digest}", action=action)
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise error_from(response, action)
        return int(response.headers.get("Content-Length", "-1"))

    def get_blob(self, digest: str) -> tuple[BinaryIO, int]:
        """A streaming reader of a blob and its size (-1 when the registry does not say).

        A connection lost mid-blob raises RegistryError(temporary=True) from read()."""
        action = f"fetching blob {digest} from {self.name}"
        response = self.request("GET", f"/v2/{self.repository}/blobs/{digest}", stream=True, action=action)
        if response.status_code == 404:
            raise not_found(response, action, "blob unknown: blob unknown to registry")
        if response.status_code != 200:
            raise error_from(response, action)
        size = int(response.headers.get("Content-Length", "-1"))
        return ResponseReader(response, size, stall_timeout=self.opts.stall_timeout), size  # type: ignore[return-value]

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
        response = self.request("POST", f"/v2/{self.repository}/blobs/uploads/",
                                action=f"initiating layer upload to /v2/{self.repository}/blobs/uploads/ in {self.registry}")
        if response.status_code != 202:
            raise error_from(response, f"starting the upload of {digest} to {self.name}")
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
                counter = UploadBody([first, second], pending, size)
                try:
                    location = self._patch(location, counter, {})
                except SourceFailed:
                    pass
                if counter.failure is not None:
                    raise counter.failure  # as the source raised it, not chained to urllib3's handling
                total = counter.total
            separator = "&" if "?" in location else "?"
            response = self.request("PUT", f"{location}{separator}{urlencode({'digest': digest})}",
                                    headers={"Content-Length": "0"}, data=b"")
            if response.status_code not in (201, 204):
                raise error_from(response, f"finishing the upload of {digest} to {self.name}")
            response.close()
        except BaseException:
            self._cancel_location(location)
            raise
        return total

    def _patch(self, location: str, data: bytes | UploadBody, headers: dict[str, str]) -> str:
        response = self.request("PATCH", location, data=data,  # type: ignore[arg-type]
                                headers={"Content-Type": "application/octet-stream", **headers})
        if response.status_code != 202:
            raise error_from(response, f"uploading a blob to {self.name}")
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
        first = f"/v2/{self.repository}/tags/list"
        path: str | None = first + "?" + urlencode({"n": page_size}) if page_size else first
        seen: set[str] = set()
        while path and path not in seen:
            seen.add(path)
            response = self.request("GET", path, action=f"fetching tags list of {self.name}")
            if response.status_code == 404:
                raise not_found(response, f"fetching tags list of {self.name}", "name unknown: repository name not known to registry",
                                "check the repository name")
            if response.status_code != 200:
                raise error_from(response, f"fetching tags list of {self.name}")
            tags.extend(json_field(response, "tags", self.registry) or [])
            path = next_link(response.headers.get("Link", ""))
            response.close()
        return tags


