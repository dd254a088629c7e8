"""Registry answers and connection failures as typed errors, with the registry's own diagnostics."""

from __future__ import annotations

import ssl
from typing import Any, Iterator

import requests

from labcheck.engine.base.errors import AuthenticationError, ImageNotFoundError, RegistryError
from labcheck.engine.registry.http import safe_url

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
    for nested in exception_chain(exc):
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


def response_diagnostics(response: requests.Response) -> list[dict]:
    try:
        body = response.json()
    except ValueError:
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
