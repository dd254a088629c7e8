"""WWW-Authenticate challenges (RFC 7235) and the bearer tokens a token server hands out."""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests

from labcheck.engine.base.errors import RegistryError


@dataclass(frozen=True)
class Challenge:
    """One parsed WWW-Authenticate challenge."""

    scheme: str  # lower-case: "basic" or "bearer"
    params: dict[str, str]


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"


_SCHEME = re.compile(rf"[\s,]*({_TOKEN})")


# A parameter is `name=value`; a name followed by whitespace and no `=` starts the next challenge.
_PARAM = re.compile(rf'[\s,]*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


_SKIP_TO_COMMA = re.compile(r"[^,]*")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate header (RFC 7235) into challenges; quoted values may hold commas."""
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(header):
        scheme = _SCHEME.match(header, pos)
        if scheme is None:
            break
        pos = scheme.end()
        params: dict[str, str] = {}
        while (param := _PARAM.match(header, pos)) is not None:
            quoted, bare = param.group(2), param.group(3)
            params[param.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            pos = param.end()
        if not params:  # a token68 credential (e.g. Negotiate) that we do not use
            pos = _SKIP_TO_COMMA.match(header, pos).end()  # type: ignore[union-attr]
        challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges


def challenge_error(challenge: Challenge | None) -> str:
    """The Bearer `error` parameter (e.g. insufficient_scope, invalid_token), or ""."""
    return challenge.params.get("error", "") if challenge else ""


TOKEN_DEFAULT_LIFETIME = 60  # seconds, when the token server gives no expires_in (token spec)


@dataclass
class Token:
    value: str
    expires_at: float  # time.monotonic()


def parse_token(response: requests.Response, registry: str, started: float) -> Token:
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
    return Token(value, started + lifetime - min(10.0, lifetime / 4))
