"""What every check is: a named function of a host context and its parameters, returning a result."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from labcheck.results import CheckResult


class CommandOutput(Protocol):
    """What testinfra's host.run returns."""

    rc: int
    stdout: str
    stderr: str


class Host(Protocol):
    """The part of testinfra's Host the checks use."""

    def run(self, command: str, *args: str) -> CommandOutput: ...


@dataclass(frozen=True)
class PlatformDigest:
    """One image of a reference: its manifest digest and platform, e.g. linux/arm64/v8."""

    digest: str
    platform: str


class RegistryQueries(Protocol):
    """Questions only a registry can answer, asked through labcheck's engine."""

    def manifest_digest(self, ref: str, *, creds: str | None = None) -> str:
        """The digest of the manifest a `transport:ref` names (a list's own digest for a list)."""

    def inspect(self, ref: str, *, creds: str | None = None) -> dict[str, Any]:
        """skopeo-inspect-shaped fields of the image a `transport:ref` names."""


@runtime_checkable
class PlatformQueries(Protocol):
    """An optional capability of RegistryQueries: the platforms of a reference's images.

    Without it, `same_digest_as` of a list only accepts the list's own digest (a copy made --all).
    """

    def instances(self, ref: str, *, creds: str | None = None) -> list[PlatformDigest]:
        """Every single image a `transport:ref` names: a list's instances, or the image itself."""


@dataclass
class CheckContext:
    """Everything a check may use: the host (local or over SSH), its environment, the engine."""

    host: Host
    engine: RegistryQueries
    env: Mapping[str, str] = field(default_factory=dict)  # exported before every command
    facts: Mapping[str, str] = field(default_factory=dict)  # what the runner learnt of the host, e.g. machine

    def command_line(self, command: str, *args: str) -> str:
        """The shell line that runs command with args quoted, after exporting env."""
        line = format_command(command, *args)
        if not self.env:
            return line
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return f"export {exports}; {line}"

    def run(self, command: str, *args: str) -> CommandOutput:
        """Run a command on the host (args shell-quoted into %s placeholders, as testinfra does)."""
        return self.host.run(self.command_line(command, *args))


def format_command(command: str, *args: str) -> str:
    """command with args shell-quoted into its %s placeholders.

    >>> format_command("ls -1A -- %s", "/root/my dir")
    "ls -1A -- '/root/my dir'"
    """
    return command % tuple(shlex.quote(a) for a in args) if args else command


CheckFunction = Callable[..., CheckResult]


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its function and the JSON Schema of its parameters."""

    name: str
    function: CheckFunction
    params_schema: dict[str, Any]
    description: str


CHECKS: dict[str, CheckSpec] = {}


def check(name: str, params_schema: dict[str, Any]) -> Callable[[CheckFunction], CheckFunction]:
    """Register fn(ctx: CheckContext, **params) -> CheckResult under name."""

    def register(function: CheckFunction) -> CheckFunction:
        CHECKS[name] = CheckSpec(name, function, params_schema, (function.__doc__ or "").strip().split("\n")[0])
        return function

    return register


def excerpt(text: str, limit: int = 400) -> str:
    """The last `limit` characters of text: where errors usually are."""
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]
