"""Host keys: checked against known_hosts; trust on first use only when asked; a changed key is refused."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import paramiko

from labcheck.hosts.errors import HOST_KEY_UNKNOWN, HostUnreachable

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


def fingerprint(key: paramiko.PKey) -> str:
    return key.fingerprint  # "SHA256:…", as ssh prints it


class KnownHosts:
    """One known_hosts file shared by every connection of a run (thread-safe)."""

    def __init__(self, path: str | None = None, *, accept_new: bool = False) -> None:
        self.path = Path(os.path.expanduser(path or DEFAULT_KNOWN_HOSTS))
        self.accept_new = accept_new
        self._lock = threading.Lock()
        self.keys = paramiko.HostKeys()
        if self.path.is_file():
            self.keys.load(str(self.path))
        self.recorded: list[str] = []  # host names whose key this run recorded

    def apply(self, client: paramiko.SSHClient) -> None:
        with self._lock:
            for name, keys in self.keys.items():
                for key_type, key in keys.items():
                    client.get_host_keys().add(name, key_type, key)
        client.set_missing_host_key_policy(_Policy(self))

    def missing(self, hostname: str, key: paramiko.PKey) -> None:
        if not self.accept_new:
            raise HostUnreachable(
                f"unknown host key {fingerprint(key)} for {hostname}: it is not in {self.path}",
                kind=HOST_KEY_UNKNOWN)
        with self._lock:
            if self.keys.lookup(hostname) is None or key.get_name() not in self.keys.lookup(hostname):
                self.keys.add(hostname, key.get_name(), key)
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                with open(self.path, "a") as handle:
                    handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
                self.recorded.append(hostname)


class _Policy(paramiko.MissingHostKeyPolicy):
    def __init__(self, known: KnownHosts) -> None:
        self.known = known

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.known.missing(hostname, key)
