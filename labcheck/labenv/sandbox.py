"""The lab sandbox: a network namespace in which the course page's registry names are the lab world's.

Inside it, `registry.fedoraproject.org` and `quay.io` resolve (through a hosts file of the sandbox's
own) to loopback addresses where the lab world's registries answer on port 443 with certificates
for those names, and the lab CA is trusted. Commands enter it through `nsenter` and a private mount
namespace, so the machine's own /etc/hosts, resolver, trust store and Docker socket are never edited.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from labcheck.errors import UsageError

NETNS_DIR = Path("/run/netns")
HOSTS_FILE = Path("/etc/hosts")
SYSTEM_DOCKER_SOCKET = Path("/var/run/docker.sock")
SYSTEM_TRUST_BUNDLES = (Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pki/tls/certs/ca-bundle.crt"))
CLONE_NEWNET = 0x40000000
HTTPS_PORT = 443


@dataclass(frozen=True)
class PageRegistry:
    """A registry name of the course page, served inside the sandbox by one of the lab world's registries."""

    name: str
    role: str  # "source" (anonymous pull) or "dest" (htpasswd)
    address: str  # its loopback address inside the sandbox


PAGE_REGISTRIES = (
    PageRegistry("registry.fedoraproject.org", "source", "127.0.0.2"),
    PageRegistry("quay.io", "dest", "127.0.0.3"),
)
# The robot account printed on the course page for its registry-to-registry copy: the sandbox's quay.io
# accepts it besides the lab world's random credentials, so the page's command runs unchanged.
PAGE_DEST_USER = "fatherlinux+fedora"
PAGE_DEST_PASSWORD = "5R4YX2LHHVB682OX232TMFSBGFT350IV70SBLDKU46LAFIY6HEGN4OYGJ2SCD4HI"

# What each tool the sandbox needs comes in, for apt and for dnf.
REQUIRED_TOOLS = {
    "ip": "iproute2 (apt) / iproute (dnf)",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "mount": "mount (apt) / util-linux (dnf)",
}


class SandboxError(UsageError):
    """The sandbox cannot be made or entered here: one line, exit 2."""


def require_sandbox_support() -> None:
    """SandboxError unless this process can make and enter network namespaces."""
    if os.geteuid() != 0:
        raise SandboxError("the lab sandbox needs root: it creates and enters a network namespace",
                           hint="run it as root (sudo)")
    missing = [f"{tool} (package {package})" for tool, package in REQUIRED_TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise SandboxError(f"the lab sandbox needs {', '.join(missing)}, not found on PATH",
                           hint="install the package named")


class Sandbox:
    """The network namespace of one lab world (named after its state directory) and how to enter it."""

    def __init__(self, state_dir: Path) -> None:
        digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:10]
        self.name = f"labcheck-{digest}"
        self.netns_path = NETNS_DIR / self.name
        self.dir = state_dir / "sandbox"
        self.hosts_file = self.dir / "hosts"

    def exists(self) -> bool:
        return self.netns_path.exists()

    def create(self) -> None:
        """The namespace with its loopback up, and the sandbox's hosts file (idempotent)."""
        require_sandbox_support()
        if not self.exists():
            _run(["ip", "netns", "add", self.name], f"cannot create the network namespace {self.name}")
        _run(["ip", "-n", self.name, "link", "set", "lo", "up"], f"cannot bring up loopback in {self.name}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hosts_file.write_text(sandbox_hosts(HOSTS_FILE.read_text(errors="replace")))

    def delete(self) -> bool:
        """Remove the namespace; True if there was one."""
        if not self.exists():
            return False
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
        return True

    def daemon_prefix(self) -> list[str]:
        """argv prefix that runs a program in the namespace (network only: its files are the machine's)."""
        return ["nsenter", f"--net={self.netns_path}", "--"]

    def enter_argv(self, argv: list[str], *, ca_bundle: Path, docker_socket: Path | None) -> list[str]:
        """argv that runs `argv` inside the sandbox: its network namespace, and a private mount
        namespace where the hosts file, the trust store and the Docker socket are the lab world's."""
        binds = [(self.hosts_file, HOSTS_FILE)]
        binds += [(ca_bundle, bundle) for bundle in SYSTEM_TRUST_BUNDLES if bundle.exists()]
        if docker_socket is not None and SYSTEM_DOCKER_SOCKET.exists() \
                and docker_socket.resolve() != SYSTEM_DOCKER_SOCKET.resolve():
            binds.append((docker_socket, SYSTEM_DOCKER_SOCKET))
        mounts = " && ".join(f"mount --bind {shlex.quote(str(src))} {shlex.quote(str(dst))}" for src, dst in binds)
        script = f'{mounts} && exec "$@"'
        return [*self.daemon_prefix(), "unshare", "--mount", "--propagation", "slave", "--",
                "/bin/sh", "-c", script, "labcheck-sandbox", *argv]

    def connect(self, address: str, port: int, *, timeout: float = 2.0) -> socket.socket:
        """A TCP connection to address:port inside the namespace, made from this process.

        A socket belongs to the network namespace it was created in; setns() moves only the
        calling thread, so a short-lived thread makes the socket and this thread is untouched.
        """
        outcome: dict[str, object] = {}

        def make() -> None:
            try:
                fd = os.open(self.netns_path, os.O_RDONLY)
                try:
                    if _libc().setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {self.netns_path}")
                finally:
                    os.close(fd)
                outcome["socket"] = socket.create_connection((address, port), timeout=timeout)
            except OSError as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=make, name=f"netns-{self.name}")
        worker.start()
        worker.join()
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["socket"]  # type: ignore[return-value]

    def port_is_free(self, address: str, port: int) -> bool:
        """True when nothing listens on address:port inside the namespace."""
        try:
            self.connect(address, port, timeout=1.0).close()
        except OSError:
            return True
        return False


def sandbox_hosts(machine_hosts: str) -> str:
    """The machine's hosts file without the page's names, then the page's names at the sandbox's addresses."""
    names = {registry.name for registry in PAGE_REGISTRIES}
    kept = [line for line in machine_hosts.splitlines()
            if not names.intersection(line.split("#", 1)[0].split()[1:])]
    ours = [f"{registry.address}\t{registry.name}" for registry in PAGE_REGISTRIES]
    return "\n".join([*kept, "# the lab world's registries under the course page's names (labcheck lab sandbox)",
                      *ours]) + "\n"


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SandboxError(f"{what}: {last[:200]}")


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC
