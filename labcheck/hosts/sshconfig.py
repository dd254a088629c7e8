"""An OpenSSH client config (Host aliases, HostName, User, Port, IdentityFile, ProxyJump) applied to targets."""

from __future__ import annotations

import os
from pathlib import Path

import paramiko

from labcheck.errors import read_named_file
from labcheck.hosts.targets import Target

DEFAULT_SSH_CONFIG = "~/.ssh/config"


def load_ssh_config(path: str | None) -> paramiko.SSHConfig | None:
    """The named file (an error when unreadable), else ~/.ssh/config when it exists, as ssh does."""
    if path is None:
        default = Path(os.path.expanduser(DEFAULT_SSH_CONFIG))
        return paramiko.SSHConfig.from_path(str(default)) if default.is_file() else None
    return paramiko.SSHConfig.from_text(read_named_file(os.path.expanduser(path), "--ssh-config"))


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
