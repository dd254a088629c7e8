"""Host keys: checked against the user's and the system's known_hosts; trust on first use only when asked;
a changed key is refused."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import paramiko

from labcheck.errors import UsageError
from labcheck.hosts.errors import HOST_KEY_UNKNOWN, HostUnreachable

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
# OpenSSH's GlobalKnownHostsFile default: where classrooms often distribute their machines' keys.
SYSTEM_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


def fingerprint(key: paramiko.PKey) -> str:
    return key.fingerprint  # "SHA256:…", as ssh prints it


class KnownHosts:
    """The known_hosts files of a run (the user's, where new keys are recorded, and the system's),
    shared by every connection (thread-safe)."""

    def __init__(self, path: str | None = None, *, accept_new: bool = False,
                 system_paths: tuple[str, ...] = SYSTEM_KNOWN_HOSTS) -> None:
        self.path = Path(os.path.expanduser(path or DEFAULT_KNOWN_HOSTS))
        self.accept_new = accept_new
        self._lock = threading.Lock()
        self.keys = paramiko.HostKeys()
        self.read_from: list[Path] = []
        for known in (*map(Path, system_paths), self.path):  # later files add to earlier ones
            try:
                self.keys.load(str(known))
            except FileNotFoundError:
                continue
            except OSError as exc:
                if known == self.path:
                    raise UsageError(f"cannot read the known hosts {known}: {exc.strerror or exc}") from None
                continue  # a system file this user may not read: ssh skips it too
            self.read_from.append(known)
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
                f"unknown host key {fingerprint(key)} for {hostname}: it is in none of "
                f"{', '.join(map(str, dict.fromkeys([*self.read_from, self.path])))}",
                kind=HOST_KEY_UNKNOWN)
        with self._lock:
            known = self.keys.lookup(hostname)
            if known is None or key.get_name() not in known:
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
