"""Targets: the hosts of a run, from testinfra-style URIs (local://, paramiko://, ssh://)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from labcheck.errors import UsageError

SSH_SCHEMES = ("paramiko", "ssh")


@dataclass(frozen=True)
class Target:
    """One host to check: how to reach it, and what is particular to it (a student's vars and env)."""

    name: str  # what tables and test ids show: a student's name, or user@host:port
    backend: str  # "local" or "ssh" (always one paramiko connection, whatever the URI's scheme)
    hostname: str = ""
    port: int | None = None  # None: ssh-config's Port, else 22
    user: str | None = None  # None: ssh-config's User, else the local user
    identity_file: str | None = None  # None: the agent and ~/.ssh/id_* (as ssh does)
    agent: bool = True
    proxy_jump: str | None = None  # [user@]host[:port], or an ssh-config alias
    vars: Mapping[str, Any] = field(default_factory=dict)  # scenario variables for this host
    env: Mapping[str, str] = field(default_factory=dict)  # exported before every command on it
    groups: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.backend == "local"

    def with_(self, **changes: Any) -> Target:
        return replace(self, **changes)


def parse_uri(uri: str) -> Target:
    """A testinfra host URI as a Target.

    >>> parse_uri("paramiko://alice@127.0.0.5:2222?ssh_identity_file=/k/alice").identity_file
    '/k/alice'
    >>> parse_uri("local://").name
    'local'
    """
    uri = uri.strip()
    if "://" not in uri:
        uri = f"ssh://{uri}"  # a bare [user@]host[:port], as testinfra takes it
    scheme = uri.split("://", 1)[0]
    if scheme == "local":  # local://NAME names this machine NAME in reports
        return Target(name=uri.split("://", 1)[1].split("?", 1)[0] or "local", backend="local")
    if scheme not in SSH_SCHEMES:
        raise UsageError(f"unsupported host URI {uri!r}",
                         hint="use local://, paramiko://[user@]host[:port] or ssh://[user@]host[:port]")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # e.g. an unclosed [ of an IPv6 address
        raise UsageError(f"host URI {uri!r}: {exc}", hint="e.g. ssh://student@[fd00::5]:22") from None
    if not parts.hostname:
        raise UsageError(f"host URI {uri!r} names no host", hint="e.g. paramiko://student@10.0.0.5:22")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"host URI {uri!r}: the port is not a number") from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"ssh_identity_file", "name"})
    if unknown:
        raise UsageError(f"host URI {uri!r}: unknown parameter {unknown[0]}",
                         hint="labcheck reads ssh_identity_file= (and name=) from a host URI")
    user = unquote(parts.username) if parts.username else None
    default_name = uri.split("://", 1)[1].split("?", 1)[0]
    return Target(name=query.get("name") or default_name, backend="ssh", hostname=parts.hostname, port=port,
                  user=user, identity_file=query.get("ssh_identity_file"))


def parse_hosts_option(value: str) -> list[Target]:
    """`--hosts a,b,c`: comma-separated URIs, each its own Target (names must differ)."""
    targets = [parse_uri(item) for item in value.split(",") if item.strip()]
    return unique_names(targets, "--hosts")


def unique_names(targets: list[Target], where: str) -> list[Target]:
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            raise UsageError(f"{where}: the host {target.name!r} is listed twice")
        seen.add(target.name)
    return targets
