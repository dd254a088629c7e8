"""Registry answers and connection failures as typed errors, with the registry's own diagnostics."""

from __future__ import annotations

import http.client
import ssl
from typing import Any, Iterator

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
    verify = next((e for e in exception_chain(exc) if isinstance(e, ssl.SSLCertVerificationError)), None)
    if verify is not None:
        reason = f"TLS verification failed: {verify.verify_message or 'certificate not trusted'}"
    else:
        ssl_error = next((e for e in exception_chain(exc) if isinstance(e, ssl.SSLError)), None)
        detail = getattr(ssl_error, "reason", None) or "handshake failed"
        reason = f"TLS handshake failed ({str(detail).lower().replace('_', ' ')})"
    return RegistryError(f"{method} {safe_url(url)}: {reason}", method=method, url=safe_url(url), hint=TLS_HINT)


def connection_reason(exc: BaseException) -> str:
    chain = list(exception_chain(exc))
    # Most telling first: urllib3's NewConnectionError (a refused connection) is a timeout type too.
    verdicts: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        (ConnectionRefusedError, "connection refused"),
        ((ConnectionResetError, BrokenPipeError), "connection reset by the server"),
        (http.client.IncompleteRead, "connection lost in the middle of the answer"),
        ((TimeoutError, requests.exceptions.Timeout, urllib3.exceptions.TimeoutError), "timed out"),
    ]
    for kinds, verdict in verdicts:
        if any(isinstance(nested, kinds) for nested in chain):
            return verdict
    text = str(exc)
    if "Name or service not known" in text or "Temporary failure in name resolution" in text:
        return "no such host"
    if "Connection refused" in text:
        return "connection refused"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the server closed the connection"
    return f"connection failed ({exc.__class__.__name__})"


def response_diagnostics(response: requests.Response) -> list[dict]:
    """The registry's errors[] of an error answer; none from a body larger than an error needs."""
    try:
        if not response._content_consumed:  # a streamed answer: read it here, bounded
            read_limited(response, MAX_ERROR_BODY)
        body = response.json()
    except (ValueError, BodyTooLarge, OSError, requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            http.client.HTTPException):
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [d for d in errors if isinstance(d, dict)] if isinstance(errors, list) else []


def not_found(response: requests.Response, message: str, hint: str | None = None) -> ImageNotFoundError:
    response.close()
    return ImageNotFoundError(message, hint=hint)


def error_from(response: requests.Response, action: str) -> RegistryError:
    """A RegistryError with the registry's own diagnostics (errors[].code/message)."""
    try:
        diagnostics = response_diagnostics(response) if response.request.method != "HEAD" else []
    finally:
        response.close()
    detail = "; ".join(f"{d.get('code', '')}: {d.get('message', '')}".strip(": ") for d in diagnostics)
    status = response.status_code
    cls = AuthenticationError if status in (401, 403) else RegistryError
    return cls(
        f"{action}: {status} {response.reason}" + (f" ({detail})" if detail else ""),
        status=status, method=response.request.method or "", url=safe_url(response.url or ""),
        diagnostics=diagnostics, temporary=status in TEMPORARY_STATUSES,
        hint="HEAD responses have no body; GET the same URL for details" if response.request.method == "HEAD" else None,
    )
