"""An OpenSSH client config (Host aliases, HostName, User, Port, IdentityFile, ProxyJump, Include) applied
to targets."""

from __future__ import annotations

import glob
import os
import re
import shlex
from pathlib import Path

import paramiko

from labcheck.errors import UsageError, read_named_file
from labcheck.hosts.targets import Target

DEFAULT_SSH_CONFIG = "~/.ssh/config"


# OpenSSH's READCONF_MAX_DEPTH: deeper means an Include cycle.
MAX_INCLUDE_DEPTH = 16
_KEYWORD = re.compile(r"^\s*(\w+)(?:\s*=\s*|\s+)(.*?)\s*$")


def load_ssh_config(path: str | None) -> paramiko.SSHConfig | None:
    """The named file (an error when unreadable), else ~/.ssh/config when it exists, as ssh does;
    Include lines followed (paramiko ignores them)."""
    if path is None:
        default = Path(os.path.expanduser(DEFAULT_SSH_CONFIG))
        if not default.is_file():
            return None
        path = str(default)
    path = os.path.expanduser(path)
    return paramiko.SSHConfig.from_text(with_includes(read_named_file(path, "--ssh-config"), path))


def with_includes(text: str, path: str, depth: int = 0) -> str:
    """text with each `Include` replaced by the files it names, as ssh reads them: relative names
    are under ~/.ssh, globs expand in sorted order, a name matching nothing is skipped. An Include
    inside a Host or Match block applies under that block: the block's line is repeated after the
    included text, so the lines that follow it stay in the block."""
    if depth > MAX_INCLUDE_DEPTH:
        raise UsageError(f"{path}: Include nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)")
    lines: list[str] = []
    block = ""  # the Host or Match line the current lines are under ("" before the first one)
    for number, line in enumerate(text.splitlines(), 1):
        found = _KEYWORD.match(line)
        keyword = found.group(1).lower() if found else ""
        if keyword in ("host", "match"):
            block = line
        if keyword != "include":
            lines.append(line)
            continue
        assert found is not None  # "include" came from it
        try:
            names = shlex.split(found.group(2))
        except ValueError as exc:
            raise UsageError(f"{path}:{number}: Include {found.group(2)}: {exc}") from None
        for name in names:
            name = os.path.expanduser(name)
            if not os.path.isabs(name):
                name = os.path.join(os.path.expanduser("~/.ssh"), name)
            for included in sorted(glob.glob(name)):
                if os.path.isfile(included):
                    lines.append(with_includes(read_named_file(included, f"the ssh config included at {path}:{number}"),
                                               included, depth + 1))
        lines.append(block or "Host *")
    return "\n".join(lines) + "\n"


def resolve(target: Target, config: paramiko.SSHConfig | None) -> Target:
    """target with its alias looked up: what the target itself says wins over the config, as on ssh's command line."""
    if config is None or target.is_local:
        return target
    found = config.lookup(target.hostname)
    identity = target.identity_file
    if identity is None and found.get("identityfile"):
        identity = os.path.expanduser(found["identityfile"][0])
    jump = target.proxy_jump or found.get("proxyjump")
    if jump and jump.lower() == "none":
        jump = None
    return target.with_(
        hostname=found.get("hostname", target.hostname),
        port=target.port or (int(found["port"]) if "port" in found else None),
        user=target.user or found.get("user"),
        identity_file=identity,
        proxy_jump=jump,
    )


def parse_jump(spec: str) -> Target:
    """The first hop of a ProxyJump value, `[user@]host[:port]`, as a target (later hops: its own ProxyJump)."""
    first = spec.split(",")[0].strip()
    if "://" in first:
        first = first.split("://", 1)[1]
    user, _, hostport = first.rpartition("@")
    host, _, port = hostport.partition(":") if not hostport.startswith("[") else hostport[1:].partition("]:")
    rest = ",".join(part.strip() for part in spec.split(",")[1:]) or None
    return Target(name=f"jump {first}", backend="ssh", hostname=host, port=int(port) if port else None,
                  user=user or None, proxy_jump=rest)
