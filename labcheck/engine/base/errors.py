"""Errors the engine raises; callers branch on types and fields, never on message text."""

from __future__ import annotations

from typing import TypeVar

from labcheck.errors import LabcheckError, UsageError

E = TypeVar("E", bound=LabcheckError)


def in_context(exc: E, context: str) -> E:
    """exc (same type, same fields) with what was being done put before its message, as
    containers/image wraps its errors (`initializing source docker://…: reading manifest …`)."""
    wrapped = exc.__class__.__new__(exc.__class__)  # no __init__: subclasses take other arguments
    wrapped.__dict__.update(exc.__dict__)
    wrapped.message = f"{context}: {exc.message}"
    wrapped.args = (wrapped.message,)
    return wrapped


class InvalidReferenceError(UsageError):
    """A `transport:reference` string skopeo would refuse too.

    reference is the text as given; reason is containers/image's own wording of the problem
    (what skopeo prints after "Invalid source name …:"), so callers can rephrase without parsing.
    """

    def __init__(
        self, message: str, *, hint: str | None = None, reference: str = "", reason: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.reference = reference
        self.reason = reason or message


class ImageNotFoundError(LabcheckError):
    """The reference names no image at its location."""


class DigestMismatchError(LabcheckError):
    """Bytes that arrived do not hash to the digest that named them."""

    def __init__(self, expected: str, actual: str, *, what: str = "blob") -> None:
        super().__init__(
            f"Digest did not match for {what} {expected}: computed {actual}",
            hint="the source is corrupted or was changed during the copy",
        )
        self.expected = expected
        self.actual = actual


class UnsupportedError(LabcheckError):
    """An operation a transport or manifest type cannot do (skopeo refuses it as well)."""


class RegistryError(LabcheckError):
    """A registry answered with an error status; keeps the registry's own diagnostics."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        url: str = "",
        diagnostics: list[dict] | None = None,
        temporary: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.method = method
        self.url = url
        self.diagnostics = diagnostics or []
        self.temporary = temporary


class AuthenticationError(RegistryError):
    """The registry refused the credentials (or asked for some and none were given)."""
