"""One SSH connection to a host (paramiko), the testinfra `host` over it, and why it failed when it did."""

from __future__ import annotations

import select
import socket
from typing import Any

import paramiko
import testinfra.host
from testinfra.backend import base
from testinfra.backend.paramiko import ParamikoBackend

from labcheck.hosts.errors import AUTH, HOST_KEY_CHANGED, LOST, NO_SUCH_HOST, REFUSED, TIMEOUT, HostUnreachable
from labcheck.hosts.hostkeys import KnownHosts, fingerprint
from labcheck.hosts.targets import Target


def address(target: Target) -> str:
    return f"{target.user + '@' if target.user else ''}{target.hostname}:{target.port or 22}"


def open_client(target: Target, known_hosts: KnownHosts, *, timeout: float,
                sock: Any = None) -> paramiko.SSHClient:
    """A connected, authenticated client; HostUnreachable (with the kind and a reason) otherwise."""
    client = paramiko.SSHClient()
    known_hosts.apply(client)
    where = address(target)
    try:
        client.connect(
            target.hostname, port=target.port or 22, username=target.user,
            key_filename=target.identity_file, allow_agent=target.agent,
            # With an identity file, offer only it: trying every key of ~/.ssh gets hosts with
            # MaxAuthTries to refuse, and hides which key failed.
            look_for_keys=target.identity_file is None,
            timeout=timeout, banner_timeout=timeout, auth_timeout=timeout, channel_timeout=timeout, sock=sock,
        )
    except HostUnreachable:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostUnreachable(
            f"HOST KEY CHANGED for {exc.hostname}: known_hosts has {fingerprint(exc.expected_key)}, the host "
            f"offers {fingerprint(exc.key)} (someone may be intercepting the connection; if the host was "
            f"reinstalled, remove its line from {known_hosts.path})", kind=HOST_KEY_CHANGED) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        key = f"the key {target.identity_file}" if target.identity_file else "the agent's and ~/.ssh's keys"
        raise HostUnreachable(f"authentication refused for {where} with {key} ({exc})", kind=AUTH) from None
    except socket.gaierror as exc:
        client.close()
        raise HostUnreachable(f"unknown host name {target.hostname} ({exc.strerror})", kind=NO_SUCH_HOST) from None
    except (socket.timeout, TimeoutError):
        client.close()
        raise HostUnreachable(f"no answer from {where} within {timeout:g}s", kind=TIMEOUT) from None
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        client.close()
        refused = all(isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == 111
                      for e in exc.errors.values())
        reason = "connection refused (is sshd running there?)" if refused else str(exc)
        raise HostUnreachable(f"{where}: {reason}", kind=REFUSED if refused else LOST) from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        kind = TIMEOUT if "timeout" in str(exc).lower() else LOST
        raise HostUnreachable(f"{where}: {exc.__class__.__name__}: {exc}".rstrip(": "), kind=kind) from None
    _no_delay(client)
    return client


def _no_delay(client: paramiko.SSHClient) -> None:
    """TCP_NODELAY on the connection's socket (not on a channel of a jump host, which has none).

    Every command is a few small packets and an answer. With Nagle's algorithm a channel's open
    request waits for the ACK of the previous packet, which the server delays by 40 ms: that was
    most of the 50 ms each command cost; now about 12 ms on loopback.
    """
    transport = client.get_transport()
    sock = transport.sock if transport is not None else None
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def drain(channel: paramiko.Channel, timeout: float) -> tuple[bytes, bytes]:
    """stdout and stderr of a command, read together until both end: a command that fills the
    channel's window on one stream while the other is still open would otherwise wait forever
    for a reader. socket.timeout when neither stream says anything for timeout seconds."""
    stdout: list[bytes] = []
    stderr: list[bytes] = []
    while True:
        while channel.recv_ready():
            stdout.append(channel.recv(65536))
        while channel.recv_stderr_ready():
            stderr.append(channel.recv_stderr(65536))
        if channel.eof_received or channel.closed:
            if not (channel.recv_ready() or channel.recv_stderr_ready()):
                return b"".join(stdout), b"".join(stderr)
            continue
        # The channel's pipe is set by data on either stream, by EOF and by close.
        readable, _, _ = select.select([channel], [], [], timeout)
        if not readable:
            raise socket.timeout()


class PooledBackend(ParamikoBackend):
    """testinfra's paramiko backend over a connection it is given: every command a new channel of it.

    Never reconnects on its own (a lost connection makes the host unreachable), and a command
    that stays silent for `command_timeout` seconds gives up.
    """

    def __init__(self, name: str, client: paramiko.SSHClient, *, command_timeout: float) -> None:
        super().__init__(f"paramiko://{name}")
        self.__dict__["client"] = client  # testinfra's cached_property: never opens its own
        self.command_timeout = command_timeout

    def _exec_command(self, command: bytes) -> tuple[int, bytes, bytes]:
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise HostUnreachable("the SSH connection was closed", kind=LOST)
        channel = transport.open_session(timeout=self.command_timeout)
        try:
            channel.exec_command(command)
            stdout, stderr = drain(channel, self.command_timeout)
            if not channel.status_event.wait(self.command_timeout):
                raise socket.timeout()
            return channel.recv_exit_status(), stdout, stderr
        finally:
            channel.close()

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        cmd = self.encode(self.get_command(command, *args))
        try:
            rc, stdout, stderr = self._exec_command(cmd)
        except (socket.timeout, TimeoutError):
            raise HostUnreachable(f"a command gave no answer within {self.command_timeout:g}s "
                                  f"({self.decode(cmd)[:120]})", kind=TIMEOUT) from None
        except HostUnreachable:
            raise
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostUnreachable(f"the SSH connection broke: {exc.__class__.__name__}: {exc}", kind=LOST) from None
        return self.result(rc, cmd, stdout, stderr)


def ssh_host(name: str, client: paramiko.SSHClient, *, command_timeout: float) -> testinfra.host.Host:
    """testinfra's Host over this client (built directly: testinfra's get_host caches hosts, and their
    connections, for the life of the process)."""
    return testinfra.host.Host(PooledBackend(name, client, command_timeout=command_timeout))
