"""The offline lab world: source and destination registries, dockerd and podman's config, under one state dir."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from labcheck.engine.base.options import Credentials, SideOptions
from labcheck.engine.registry.client import RegistryClient
from labcheck.engine.transports.dockersave.unix_http import ping as docker_ping
from labcheck.errors import LabcheckError, UsageError
from labcheck.labenv import components, tools, userenv
from labcheck.labenv.process import Daemon, free_port, port_is_free
from labcheck.labenv.sandbox import (HTTPS_PORT, PAGE_DEST_PASSWORD, PAGE_DEST_USER, PAGE_REGISTRIES, PageRegistry,
                                     Sandbox, SandboxError, require_sandbox_support)
from labcheck.labenv.seed import SEED_REPOSITORY, build_seed, push_seed, sha256_digest
from labcheck.labenv.tls import ensure_lab_pki, ensure_names_certificate

SYSTEM_DOCKER_SOCKET = Path("/var/run/docker.sock")
# Unix socket paths are limited to 108 bytes; dockerd's containerd sockets live deep in exec-root.
MAX_EXEC_ROOT = 48


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "labcheck" / "lab"


@dataclass
class ComponentStatus:
    name: str
    address: str
    healthy: bool
    detail: str = ""


class LabWorld:
    """One lab world, identified by its state directory."""

    def __init__(self, state_dir: Path | str | None = None) -> None:
        self.state_dir = Path(state_dir or os.environ.get("LABCHECK_STATE_DIR") or default_state_dir()).absolute()
        if self.state_dir.exists() and not self.state_dir.is_dir():
            raise UsageError(f"--state-dir {self.state_dir} is not a directory")
        self.run_dir = self.state_dir / "run"
        self.tls_dir = self.state_dir / "tls"
        self.creds_file = self.state_dir / "dest-creds"
        self.podman_dir = self.state_dir / "podman"
        self.source = Daemon("source-registry", self.run_dir)
        self.dest = Daemon("dest-registry", self.run_dir)
        self.dockerd = Daemon("dockerd", self.run_dir)
        self.sandbox = Sandbox(self.state_dir)
        self.page_registries = {registry.name: Daemon(f"sandbox-{registry.role}-registry", self.run_dir)
                                for registry in PAGE_REGISTRIES}

    # --- persisted settings -------------------------------------------------------------

    @property
    def _settings_file(self) -> Path:
        return self.state_dir / "state.json"

    def settings(self) -> dict:
        try:
            return json.loads(self._settings_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _save_settings(self, settings: dict) -> None:
        self._settings_file.write_text(json.dumps(settings, indent=2) + "\n")

    @property
    def source_registry(self) -> str:
        return f"127.0.0.1:{self.settings()['source_port']}"

    @property
    def dest_registry(self) -> str:
        return f"127.0.0.1:{self.settings()['dest_port']}"

    @property
    def docker_socket(self) -> Path:
        return Path(self.settings()["docker_sockets"][0])

    @property
    def ca_bundle(self) -> Path:
        return self.tls_dir / "bundle.crt"

    def dest_credentials(self) -> Credentials:
        return Credentials.parse(self.creds_file.read_text().strip())

    def _exec_root(self) -> Path:
        candidate = self.state_dir / "docker" / "exec"
        if len(str(candidate)) <= MAX_EXEC_ROOT:
            return candidate
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        return Path("/run") / f"labcheck-{digest}"

    # --- up ---------------------------------------------------------------------------

    def up(self, *, source_port: int | None = None, dest_port: int | None = None,
           progress=lambda message: None) -> None:
        """Start what is not running, wait until everything answers, seed the source registry."""
        if os.geteuid() != 0:
            raise UsageError("the lab world runs dockerd and needs root", hint="run it as root (sudo)")
        found = tools.lab_tools()
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"--state-dir {self.state_dir} is not a directory") from None
        settings = self.settings()
        settings["source_port"] = self._choose_port(self.source, "source", source_port, settings.get("source_port"))
        settings["dest_port"] = self._choose_port(self.dest, "destination", dest_port, settings.get("dest_port"))
        if self.dockerd.pid() is None:
            settings["docker_sockets"] = self._docker_sockets()
        settings["exec_root"] = str(self._exec_root())
        self._save_settings(settings)

        ensure_lab_pki(self.tls_dir)
        htpasswd = self.state_dir / "registries" / "dest" / "htpasswd"
        htpasswd.parent.mkdir(parents=True, exist_ok=True)
        components.ensure_dest_credentials(self.creds_file, htpasswd)
        components.ensure_htpasswd_user(htpasswd, PAGE_DEST_USER, PAGE_DEST_PASSWORD)

        self._start_registry(found.registry, self.source, "source", settings["source_port"], None, progress)
        self._start_registry(found.registry, self.dest, "dest", settings["dest_port"], htpasswd, progress)
        self._start_dockerd(settings, found.runtime, progress)
        components.write_podman_config(self.podman_dir, runtime=found.runtime, cgroup_manager=found.cgroup_manager)
        self._start_sandbox(found.registry, htpasswd, progress)
        userenv.write_rootless_conf(self.podman_dir / "containers.conf")

        self._wait("source registry", self.source, lambda: self._registry_answers(self.source_registry))
        self._wait("destination registry", self.dest, lambda: self._registry_answers(self.dest_registry))
        for registry in PAGE_REGISTRIES:
            self._wait(f"sandbox's {registry.name} registry", self.page_registries[registry.name],
                       lambda registry=registry: self._page_registry_answers(registry))
        self._wait("dockerd", self.dockerd, lambda: docker_ping(str(self.docker_socket)), timeout=60)
        progress("seeding the source registry with fedora:38, 39, 40 and latest")
        self.seed(found.busybox)
        self._check_podman()
        (self.state_dir / "env.sh").write_text(self.env_script())

    def _choose_port(self, daemon: Daemon, what: str, wanted: int | None, recorded: int | None) -> int:
        if daemon.pid() is not None and recorded:
            if wanted is not None and wanted != recorded:
                raise UsageError(f"the {what} registry of this lab world already runs on port {recorded}",
                                 hint="run 'labcheck lab down' first to move it")
            return recorded
        if wanted is not None:
            if not 0 < wanted < 65536:
                raise UsageError(f"--{what.split()[0][:6]}-port {wanted} is not a TCP port")
            if not port_is_free(wanted):
                raise UsageError(f"port {wanted} for the {what} registry is already in use on 127.0.0.1",
                                 hint="choose another port or stop what holds it")
            return wanted
        if recorded and port_is_free(recorded):
            return recorded
        return free_port()

    def _docker_sockets(self) -> list[str]:
        own = self.state_dir / "docker" / "docker.sock"
        own.parent.mkdir(parents=True, exist_ok=True)
        sockets = [str(own)]
        if _socket_path_free(SYSTEM_DOCKER_SOCKET):
            SYSTEM_DOCKER_SOCKET.unlink(missing_ok=True)  # a stale socket nobody listens on
            sockets.append(str(SYSTEM_DOCKER_SOCKET))
        return sockets

    def _start_registry(self, program: Path, daemon: Daemon, role: str, port: int, htpasswd: Path | None,
                        progress) -> None:
        if daemon.pid() is not None:
            return
        config = components.write_registry(self.state_dir / "registries" / role, port=port,
                                           tls_dir=self.tls_dir, htpasswd=htpasswd)
        progress(f"starting the {role} registry on 127.0.0.1:{port}")
        daemon.start([str(program), "serve", str(config)], env=_clean_env())

    def _start_sandbox(self, program: Path, htpasswd: Path, progress) -> None:
        """The sandbox's network namespace, and in it the source and destination registries again,
        on port 443 under the page's names, serving the same storage."""
        if not self.sandbox.exists():
            progress(f"creating the sandbox (network namespace {self.sandbox.name}) with "
                     + " and ".join(registry.name for registry in PAGE_REGISTRIES))
        self.sandbox.create()
        certificate = ensure_names_certificate(self.tls_dir, [registry.name for registry in PAGE_REGISTRIES])
        for registry in PAGE_REGISTRIES:
            daemon = self.page_registries[registry.name]
            if daemon.pid() is not None:
                continue
            if not self.sandbox.port_is_free(registry.address, HTTPS_PORT):
                raise SandboxError(f"port {HTTPS_PORT} of {registry.name} ({registry.address}) is taken inside "
                                   f"the sandbox {self.sandbox.name}",
                                   hint=f"stop what listens there (ip netns pids {self.sandbox.name}), "
                                        "or 'labcheck lab down' and up again")
            config = components.write_registry(
                self.state_dir / "registries" / registry.role, port=HTTPS_PORT, tls_dir=self.tls_dir,
                htpasswd=htpasswd if registry.role == "dest" else None, address=registry.address,
                certificate=certificate, config_name="config-sandbox.yml")
            daemon.start([*self.sandbox.daemon_prefix(), str(program), "serve", str(config)], env=_clean_env(),
                         program=str(program))

    def _page_registry_answers(self, registry: PageRegistry) -> bool:
        try:
            with self.sandbox.connect(registry.address, HTTPS_PORT, timeout=2) as sock:
                context = ssl.create_default_context(cafile=str(self.tls_dir / "ca.crt"))
                with context.wrap_socket(sock, server_hostname=registry.name) as tls:
                    tls.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {registry.name}\r\nConnection: close\r\n\r\n".encode())
                    status_line = tls.recv(64).split(b"\r\n", 1)[0].split()
        except (OSError, ssl.SSLError):
            return False
        return len(status_line) > 1 and status_line[1] in (b"200", b"401")

    def _start_dockerd(self, settings: dict, runtime: tools.OciRuntime, progress) -> None:
        if self.dockerd.pid() is not None:
            return
        docker_dir = self.state_dir / "docker"
        exec_root = Path(settings["exec_root"])
        for path in (docker_dir / "data", exec_root):
            path.mkdir(parents=True, exist_ok=True)
        env = _clean_env()
        stand_in = tools.runc_stand_in(runtime, docker_dir / "bin")
        if stand_in is not None:
            env["PATH"] = os.pathsep.join([str(stand_in), env.get("PATH", os.defpath)])
        progress(f"starting dockerd on {', '.join(settings['docker_sockets'])}")
        self.dockerd.start(
            components.dockerd_argv(docker_dir / "data", exec_root, settings["docker_sockets"],
                                    docker_dir / "dockerd.pid", runtime),
            env=env,
        )

    def _wait(self, what: str, daemon: Daemon, ready, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if daemon.pid() is None:
                break
            if ready():
                return
            time.sleep(0.2)
        state = "exited" if daemon.pid() is None else f"did not answer within {timeout:.0f}s"
        tail = daemon.log_tail(3).strip().splitlines()
        raise LabcheckError(
            f"the {what} did not start ({state}); its log is {daemon.log_file}"
            + (f"; last line: {tail[-1][:200]}" if tail else "")
        )

    def _registry_answers(self, registry: str) -> bool:
        try:
            response = requests.get(f"https://{registry}/v2/", verify=str(self.tls_dir / "ca.crt"), timeout=2)
        except requests.RequestException:
            return False
        return response.status_code in (200, 401)

    def seed(self, busybox: Path) -> str:
        """Push the seed image (busybox its shell) to the source registry unless it already holds it."""
        seed = build_seed(busybox)
        expected = sha256_digest(seed.tags["latest"][0])
        client = self.registry_client(self.source_registry, SEED_REPOSITORY, push=True)
        try:
            if client.manifest_digest("latest") == expected and all(
                client.manifest_digest(tag) for tag in seed.tags
            ):
                return expected
            return push_seed(client, seed)
        finally:
            client.close()

    def registry_client(self, registry: str, repository: str, *, push: bool = False,
                        creds: Credentials | None = None) -> RegistryClient:
        """A client that trusts the lab CA (and, for the destination, knows the credentials)."""
        if creds is None and registry == self.dest_registry:
            creds = self.dest_credentials()
        opts = SideOptions(creds=creds, cert_dir=str(self.tls_dir / "cert-dir"))
        return RegistryClient(registry, repository, opts, push=push)

    def _check_podman(self) -> None:
        result = subprocess.run(["podman", "info", "--format", "{{.Store.GraphRoot}}"],
                                env={**os.environ, **self.env()}, capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise LabcheckError(f"podman does not work with the lab world's config: {last[:200]}",
                                hint=f"see {self.podman_dir / 'containers.conf'}")

    # --- down -----------------------------------------------------------------------

    def down(self, *, progress=lambda message: None) -> list[str]:
        """Stop the lab world's containers and daemons; returns the names of what was stopped."""
        stopped = []
        if (self.podman_dir / "containers.conf").exists():
            result = subprocess.run(["podman", "stop", "--all", "--time", "2"], env={**os.environ, **self.env()},
                                    capture_output=True, text=True)
            if result.stdout.strip():
                stopped.append("podman containers")
        for daemon in (*self.page_registries.values(), self.dockerd, self.dest, self.source):
            if daemon.stop():
                progress(f"stopped {daemon.name}")
                stopped.append(daemon.name)
        if self.sandbox.delete():
            progress(f"removed the sandbox (network namespace {self.sandbox.name})")
            stopped.append("sandbox")
        for sock in self.settings().get("docker_sockets", []):
            # dockerd removes its sockets on a clean exit; after a kill, remove what is ours.
            if _socket_path_free(Path(sock)):
                Path(sock).unlink(missing_ok=True)
        return stopped

    # --- status and env --------------------------------------------------------------

    def status(self) -> list[ComponentStatus]:
        settings = self.settings()
        if not settings:
            return [ComponentStatus(name, "-", False, "never started") for name in
                    ("source-registry", "dest-registry",
                     *(daemon.name for daemon in self.page_registries.values()), "dockerd", "podman")]
        rows = []
        for daemon, registry in ((self.source, self.source_registry), (self.dest, self.dest_registry)):
            pid = daemon.pid()
            healthy = pid is not None and self._registry_answers(registry)
            rows.append(ComponentStatus(daemon.name, f"https://{registry}", healthy,
                                        f"pid {pid}" if pid else "not running"))
        for page in PAGE_REGISTRIES:
            daemon = self.page_registries[page.name]
            pid = daemon.pid()
            healthy = pid is not None and self.sandbox.exists() and self._page_registry_answers(page)
            rows.append(ComponentStatus(daemon.name, f"https://{page.name} (sandbox {self.sandbox.name})",
                                        healthy, f"pid {pid}" if pid else "not running"))
        pid = self.dockerd.pid()
        sockets = settings.get("docker_sockets", [])
        healthy = pid is not None and bool(sockets) and docker_ping(sockets[0])
        rows.append(ComponentStatus("dockerd", ", ".join(f"unix://{s}" for s in sockets), healthy,
                                    f"pid {pid}" if pid else "not running"))
        podman_ok = (self.podman_dir / "containers.conf").exists()
        if podman_ok:
            try:
                self._check_podman()
            except LabcheckError as exc:
                podman_ok = False
                detail = exc.message
            else:
                detail = f"store {self.podman_dir / 'graph'}"
        else:
            detail = "not configured"
        rows.append(ComponentStatus("podman", str(self.podman_dir / "containers.conf"), podman_ok, detail))
        return rows

    def env(self) -> dict[str, str]:
        """The variables that point plain skopeo, podman and docker (and labcheck) at this world."""
        settings = self.settings()
        if not settings:
            raise LabcheckError(f"no lab world in {self.state_dir}", hint="run 'labcheck lab up' first")
        podman = self.podman_dir
        return {
            "LABCHECK_STATE_DIR": str(self.state_dir),
            "LABCHECK_SOURCE_REGISTRY": self.source_registry,
            "LABCHECK_DEST_REGISTRY": self.dest_registry,
            "LABCHECK_DEST_CREDS_FILE": str(self.creds_file),
            "DOCKER_HOST": f"unix://{self.docker_socket}",
            "SSL_CERT_FILE": str(self.ca_bundle),
            "CONTAINERS_CONF": str(podman / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(podman / "registries.conf"),
            "CONTAINERS_STORAGE_CONF": str(podman / "storage.conf"),
            userenv.ROOTLESS_CONF_VARIABLE: str(podman / userenv.ROOTLESS_CONF),
        }

    def sandbox_command(self, argv: list[str]) -> tuple[list[str], dict[str, str]]:
        """(argv, environment) that run argv inside the lab sandbox with the lab world's configuration."""
        require_sandbox_support()
        if not self.settings():
            raise SandboxError(f"no lab world in {self.state_dir}", hint="run 'labcheck lab up' first")
        if not self.sandbox.exists() or any(d.pid() is None for d in self.page_registries.values()):
            raise SandboxError(f"the lab sandbox of {self.state_dir} is not up", hint="run 'labcheck lab up'")
        env = {**os.environ, **self.env(), "LABCHECK_SANDBOX": self.sandbox.name}
        return self.sandbox.enter_argv(argv, ca_bundle=self.ca_bundle, docker_socket=self.docker_socket), env

    def env_script(self) -> str:
        lines = [f"export {name}={shlex.quote(value)}" for name, value in self.env().items()]
        return "\n".join(lines) + "\n"


def _socket_path_free(path: Path) -> bool:
    """True when nothing listens at path (absent, or a stale socket file)."""
    if not path.exists() and not path.is_symlink():
        return True
    if not path.is_socket():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return True
        except OSError:
            return False
    return False


def _clean_env() -> dict[str, str]:
    """Daemons get the caller's environment minus what would point them at another lab world."""
    drop = {"DOCKER_HOST", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF"}
    return {k: v for k, v in os.environ.items() if k not in drop}
