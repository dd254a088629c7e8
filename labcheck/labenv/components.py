"""What each component of the lab world needs on disk and on its command line."""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

import bcrypt
import yaml

from labcheck.labenv.tools import OciRuntime

DEST_USER = "student+fedora"
PASSWORD_ALPHABET = string.ascii_uppercase + string.digits
BCRYPT_COST = 5


def registry_config(root: Path, *, port: int, tls_dir: Path, htpasswd: Path | None, address: str = "127.0.0.1",
                    certificate: tuple[Path, Path] | None = None) -> dict:
    """A distribution 2.8 config: HTTPS on address:port, filesystem storage under root, deletes allowed.

    certificate is (cert, key), by default the lab's server certificate for 127.0.0.1.
    """
    cert, key = certificate or (tls_dir / "server.crt", tls_dir / "server.key")
    config: dict = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {
            "addr": f"{address}:{port}",
            "secret": secrets.token_hex(16),
            "tls": {"certificate": str(cert), "key": str(key)},
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "labcheck-dest", "path": str(htpasswd)}}
    return config


def write_registry(root: Path, *, port: int, tls_dir: Path, htpasswd: Path | None, address: str = "127.0.0.1",
                   certificate: tuple[Path, Path] | None = None, config_name: str = "config.yml") -> Path:
    """The config file of a registry whose storage is root/data (registries serving one store share it)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    path = root / config_name
    path.write_text(yaml.safe_dump(registry_config(root, port=port, tls_dir=tls_dir, htpasswd=htpasswd,
                                                   address=address, certificate=certificate)))
    return path


def ensure_dest_credentials(creds_file: Path, htpasswd: Path) -> None:
    """A user and random password, kept 0600 as `user:password`; the htpasswd entry from stdin."""
    if creds_file.exists() and htpasswd.exists():
        return
    password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(48))
    fd = os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{DEST_USER}:{password}")
    fd = os.open(htpasswd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(htpasswd_entry(DEST_USER, password) + "\n")


def ensure_htpasswd_user(htpasswd: Path, user: str, password: str) -> None:
    """Add user to the htpasswd file unless it already has an entry."""
    lines = htpasswd.read_text().splitlines() if htpasswd.exists() else []
    if any(line.split(":", 1)[0] == user for line in lines):
        return
    fd = os.open(htpasswd, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(htpasswd_entry(user, password) + "\n")


def htpasswd_entry(user: str, password: str) -> str:
    """`user:bcrypt-hash`, the form distribution's htpasswd auth reads (as `htpasswd -nB` writes it)."""
    # Cost 5, htpasswd -B's default: the registry checks the hash on every request, and the passwords
    # are long and random, so a slower hash would only slow the lab down.
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_COST)).decode()}"


def dockerd_argv(data_root: Path, exec_root: Path, sockets: list[str], pidfile: Path,
                 runtime: OciRuntime | None = None) -> list[str]:
    """dockerd's command line; a runtime other than runc (dockerd's own, a reserved name) is made its default."""
    argv = [
        "dockerd", "--iptables=false", "--ip-masq=false", "--bridge=none",
        f"--data-root={data_root}", f"--exec-root={exec_root}", f"--pidfile={pidfile}",
    ]
    if runtime is not None and runtime.name != "runc":
        argv += [f"--add-runtime={runtime.name}={runtime.path}", f"--default-runtime={runtime.name}"]
    for sock in sockets:
        argv.append(f"--host=unix://{sock}")
    return argv


def write_podman_config(podman_dir: Path, *, runtime: OciRuntime, cgroup_manager: str) -> dict[str, Path]:
    """containers.conf, storage.conf and registries.conf of the lab world's own (not the user's).

    runtime is the OCI runtime found to run containers here (tools.working_runtime), named with its path
    so that podman uses that binary; cgroup_manager is the machine's (tools.cgroup_manager).
    """
    for sub in ("graph", "run", "tmp", "networks"):
        (podman_dir / sub).mkdir(parents=True, exist_ok=True)
    soft_nofile, hard_nofile = _limits("RLIMIT_NOFILE", 1024)
    soft_nproc, hard_nproc = _limits("RLIMIT_NPROC", 4096)
    containers_conf = podman_dir / "containers.conf"
    # Explicit ulimits: podman's defaults exceed the hard limits here; host networking: no CNI bridge
    # or iptables needed.
    containers_conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={soft_nofile}:{hard_nofile}", "nproc={soft_nproc}:{hard_nproc}"]\n'
        'netns = "host"\n'
        "\n[engine]\n"
        f'runtime = "{runtime.name}"\n'
        f'cgroup_manager = "{cgroup_manager}"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{podman_dir / "events.log"}"\n'
        f'tmp_dir = "{podman_dir / "tmp"}"\n'
        "\n[engine.runtimes]\n"
        f'{runtime.name} = ["{runtime.path}"]\n'
        "\n[network]\n"
        f'network_config_dir = "{podman_dir / "networks"}"\n'
    )
    storage_conf = podman_dir / "storage.conf"
    storage_conf.write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{podman_dir / "graph"}"\n'
        f'runroot = "{podman_dir / "run"}"\n'
    )
    registries_conf = podman_dir / "registries.conf"
    registries_conf.write_text('unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n')
    return {"CONTAINERS_CONF": containers_conf, "CONTAINERS_STORAGE_CONF": storage_conf,
            "CONTAINERS_REGISTRIES_CONF": registries_conf}


def _limits(name: str, wanted: int) -> tuple[int, int]:
    import resource

    soft, hard = resource.getrlimit(getattr(resource, name))
    hard = wanted if hard == resource.RLIM_INFINITY else min(hard, max(wanted, 1))
    return min(wanted, hard), hard
