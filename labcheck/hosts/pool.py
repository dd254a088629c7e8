"""The connection pool: one SSH connection per host, shared by every check of it, closed when the host is done."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import paramiko
import testinfra
import testinfra.host

from labcheck.hosts.connection import open_client, ssh_host
from labcheck.hosts.errors import LOST, HostUnreachable
from labcheck.hosts.hostkeys import KnownHosts
from labcheck.hosts.sshconfig import parse_jump, resolve
from labcheck.hosts.targets import Target


def _active(client: paramiko.SSHClient) -> bool:
    transport = client.get_transport()
    return transport is not None and transport.is_active()


@dataclass
class PoolOptions:
    known_hosts: KnownHosts = field(default_factory=KnownHosts)
    ssh_config: paramiko.SSHConfig | None = None
    connect_timeout: float = 10.0  # TCP connect, banner, auth
    command_timeout: float = 60.0  # a command silent this long makes the host unreachable


class ConnectionPool:
    """Hands out one testinfra `host` per target; jump hosts are connected once and shared."""

    def __init__(self, options: PoolOptions | None = None) -> None:
        self.options = options or PoolOptions()
        self._lock = threading.Lock()
        self._clients: dict[str, paramiko.SSHClient] = {}
        self._jumps: dict[str, paramiko.SSHClient] = {}
        self._jump_locks: dict[str, threading.Lock] = {}
        self._target_locks: dict[str, threading.Lock] = {}
        self._failures: dict[str, HostUnreachable] = {}
        self.opened = 0  # connections opened, jump hosts included (what sshd counts)

    def host(self, target: Target) -> testinfra.host.Host:
        """The host of target, connecting on first use (HostUnreachable when that fails, then and
        whenever asked again: a host is tried once per run)."""
        if target.is_local:
            return testinfra.get_host("local://")
        with self._lock:
            lock = self._target_locks.setdefault(target.name, threading.Lock())
        with lock:  # one connection per host, even when an early connect is still under way
            with self._lock:
                client = self._clients.get(target.name)
                failure = self._failures.get(target.name)
            if failure is not None:
                raise HostUnreachable(failure.reason, kind=failure.kind)
            if client is None:
                try:
                    client = self._connect(resolve(target, self.options.ssh_config))
                except HostUnreachable as exc:
                    with self._lock:
                        self._failures[target.name] = exc
                    raise
                with self._lock:
                    self._clients[target.name] = client
        return ssh_host(target.name, client, command_timeout=self.options.command_timeout)

    def connect_early(self, targets: list[Target]) -> None:
        """Start connecting to the remote targets in the background; host() then waits for (and uses)
        each connection, or raises what stopped it."""
        def connect(target: Target) -> None:
            try:
                self.host(target)
            except Exception:  # kept (HostUnreachable) or raised again when the run asks for the host
                pass

        for target in targets:
            if not target.is_local:
                threading.Thread(target=connect, args=(target,), name=f"labcheck-connect-{target.name}",
                                 daemon=True).start()

    def close(self, target: Target) -> None:
        with self._lock:
            client = self._clients.pop(target.name, None)
        if client is not None:
            client.close()

    def close_all(self) -> None:
        with self._lock:
            clients = [*self._clients.values(), *self._jumps.values()]
            self._clients.clear()
            self._jumps.clear()
        for client in clients:
            client.close()

    def open_count(self) -> int:
        with self._lock:
            return sum(1 for c in [*self._clients.values(), *self._jumps.values()] if _active(c))

    def _connect(self, target: Target) -> paramiko.SSHClient:
        sock = None
        if target.proxy_jump:
            jump = self._jump(target.proxy_jump)
            transport = jump.get_transport()
            try:
                assert transport is not None
                sock = transport.open_channel("direct-tcpip", (target.hostname, target.port or 22), ("127.0.0.1", 0),
                                              timeout=self.options.connect_timeout)
            except (paramiko.SSHException, OSError, AssertionError) as exc:
                raise HostUnreachable(f"the jump host {target.proxy_jump} could not open a channel to "
                                      f"{target.hostname}:{target.port or 22}: {exc}", kind=LOST) from None
        client = open_client(target, self.options.known_hosts, timeout=self.options.connect_timeout, sock=sock)
        with self._lock:
            self.opened += 1
        return client

    def _jump(self, spec: str) -> paramiko.SSHClient:
        with self._lock:
            lock = self._jump_locks.setdefault(spec, threading.Lock())
        with lock:  # hosts behind one jump host share its connection: open it once
            with self._lock:
                client = self._jumps.get(spec)
            if client is not None and _active(client):
                return client
            jump = resolve(parse_jump(spec), self.options.ssh_config)
            try:
                client = self._connect(jump)
            except HostUnreachable as exc:
                raise HostUnreachable(f"jump host {spec}: {exc.reason}", kind=exc.kind) from None
            with self._lock:
                self._jumps[spec] = client
            return client
