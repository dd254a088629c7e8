"""Why a host could not be reached: one exception, with the kind of failure and a reason a person can act on."""

from __future__ import annotations

REFUSED, TIMEOUT, AUTH, HOST_KEY_CHANGED, HOST_KEY_UNKNOWN, NO_SUCH_HOST, LOST = (
    "refused", "timeout", "auth", "host-key-changed", "host-key-unknown", "no-such-host", "connection-lost")


class HostUnreachable(Exception):
    """The host could not be reached (connection, auth, host key, timeout): this host only, every step of it."""

    def __init__(self, reason: str, *, kind: str = LOST) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
