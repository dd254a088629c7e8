"""Registry answers and connection failures as typed errors, with the registry's own diagnostics."""

from __future__ import annotations

import http.client
import ssl
from typing import Any, Iterator
from urllib.parse import urlparse

import requests
import urllib3.exceptions

from labcheck.engine.base.errors import AuthenticationError, ImageNotFoundError, RegistryError
from labcheck.engine.base.limits import MAX_ERROR_BODY
from labcheck.engine.registry.http import BodyTooLarge, read_limited, safe_url

TEMPORARY_STATUSES = frozenset({429, 502, 503, 504})


TLS_HINT = ("trust the registry's CA (SSL_CERT_FILE, --cert-dir, /etc/containers/certs.d/HOST:PORT/) "
            "or use --tls-verify=false")


def json_field(response: requests.Response, name: str, registry: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        response.close()
        raise RegistryError(f"registry {registry} answered {safe_url(response.url)} with invalid JSON",
                            url=safe_url(response.url))
    return body.get(name)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
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


def tls_error(method: str, url: str, exc: BaseException) -> RegistryError:
    """A TLS failure in Go's words (what skopeo prints after the URL)."""
    verify = next((e for e in exception_chain(exc) if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is not None:
        reason = _x509_reason(verify)
    else:
        ssl_error = next((e for e in exception_chain(exc) if isinstance(e, ssl.SSLError)), None)
        detail = str(getattr(ssl_error, "reason", None) or "handshake failed")
        if detail == "WRONG_VERSION_NUMBER":  # an HTTP server answered the TLS hello
            reason = "http: server gave HTTP response to HTTPS client"
        else:
            reason = f"remote error: tls: {detail.lower().replace('_', ' ')}"
    return RegistryError(go_url_error(method, url, reason), method=method, url=safe_url(url), hint=TLS_HINT)


def _x509_reason(error: ssl.SSLCertVerificationError) -> str:
    # OpenSSL's verify codes, as Go's crypto/x509 words the same failures
    code = error.verify_code
    if code in (2, 18, 19, 20, 21):
        return "x509: certificate signed by unknown authority"
    if code in (9, 10):
        return "x509: certificate has expired or is not yet valid"
    if code == 62:
        return f"x509: certificate is not valid for the name asked for ({error.verify_message})"
    return f"x509: {error.verify_message or 'certificate not trusted'}"


def go_url_error(method: str, url: str, reason: str) -> str:
    """Go's *url.Error text: `Get "https://host/v2/": reason`."""
    return f'{method.capitalize()} "{safe_url(url)}": {reason}'


def connection_reason(exc: BaseException, url: str = "") -> str:
    """Why a connection failed, in Go's net words (`dial tcp HOST:PORT: connect: connection refused`)."""
    parsed = urlparse(url)
    address = f"{parsed.hostname}:{parsed.port or (443 if parsed.scheme == 'https' else 80)}" if parsed.hostname else ""
    chain = list(exception_chain(exc))
    # Most telling first: urllib3's NewConnectionError (a refused connection) is a timeout type too.
    verdicts: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (ConnectionRefusedError, f"dial tcp {address}: connect: connection refused"),
        ((ConnectionResetError, BrokenPipeError), f"read tcp {address}: read: connection reset by peer"),
        (http.client.IncompleteRead, "unexpected EOF"),
        ((TimeoutError, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError), f"dial tcp {address}: i/o timeout"),
    ]
    for kinds, verdict in verdicts:
        if any(isinstance(nested, kinds) for nested in chain):
            return verdict
    text = str(exc)
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return f"dial tcp: lookup {parsed.hostname}: no such host"
    if "Connection refused" in text:
        return f"dial tcp {address}: connect: connection refused"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "EOF"
    return f"connection failed ({exc.__class__.__name__})"


def registry_text(diagnostics: list[dict], status: int, reason: str = "") -> str:
    """A registry's error answer as containers/image prints it: each errors[] entry as
    `code in words: message`, else what distribution's client says for the bare status."""
    parts = [f"{str(d.get('code', '')).lower().replace('_', ' ')}: {d.get('message', '')}" for d in diagnostics]
    if len(parts) == 1:
        return parts[0]
    if parts:
        return "errors: " + "; ".join(parts)
    if status == 401:
        return "unauthorized: authentication required"
    if status == 403:
        return "denied: requested access to the resource is denied"
    return f"received unexpected HTTP status: {status} {reason}".rstrip()


def response_diagnostics(response: requests.Response) -> list[dict]:
    """The registry's errors[] of an error answer; none from a body larger than an error needs."""
    try:
        if not getattr(response, "_content_consumed", False):  # a streamed answer: read it here, bounded
            read_limited(response, MAX_ERROR_BODY)
        body = response.json()
    except (ValueError, BodyTooLarge, OSError, requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            http.client.HTTPException):
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [d for d in errors if isinstance(d, dict)] if isinstance(errors, list) else []


def not_found(response: requests.Response, action: str, default: str, hint: str | None = None) -> ImageNotFoundError:
    """ImageNotFoundError for a 404: `action: ` and the registry's words (default when it gives none)."""
    try:
        diagnostics = response_diagnostics(response) if response.request.method != "HEAD" else []
    finally:
        response.close()
    text = registry_text(diagnostics, 404) if diagnostics else default
    error = ImageNotFoundError(f"{action}: {text}", hint=hint)
    return error


def error_from(response: requests.Response, action: str) -> RegistryError:
    """A RegistryError with the registry's own diagnostics (errors[].code/message), worded as skopeo's."""
    try:
        diagnostics = response_diagnostics(response) if response.request.method != "HEAD" else []
    finally:
        response.close()
    status = response.status_code
    cls = AuthenticationError if status in (401, 403) else RegistryError
    hint = None
    if response.request.method == "HEAD" and status not in (401, 403):
        hint = "HEAD responses have no body; GET the same URL for details"
    return cls(
        f"{action}: {registry_text(diagnostics, status, response.reason or '')}",
        status=status, method=response.request.method or "", url=safe_url(response.url or ""),
        diagnostics=diagnostics, temporary=status in TEMPORARY_STATUSES, hint=hint,
    )
