"""What each component of the lab world needs on disk and on its command line."""

from __future__ import annotations

import os
import secrets
import string
import subprocess
from pathlib import Path

import yaml

from labcheck.errors import LabcheckError

DEST_USER = "student+fedora"
PASSWORD_ALPHABET = string.ascii_uppercase + string.digits


def registry_config(root: Path, *, port: int, tls_dir: Path, htpasswd: Path | None) -> dict:
    """A distribution 2.8 config: HTTPS on 127.0.0.1:port, filesystem storage, deletes allowed."""
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
            "addr": f"127.0.0.1:{port}",
            "secret": secrets.token_hex(16),
            "tls": {"certificate": str(tls_dir / "server.crt"), "key": str(tls_dir / "server.key")},
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "labcheck-dest", "path": str(htpasswd)}}
    return config


def write_registry(root: Path, *, port: int, tls_dir: Path, htpasswd: Path | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    path = root / "config.yml"
    path.write_text(yaml.safe_dump(registry_config(root, port=port, tls_dir=tls_dir, htpasswd=htpasswd)))
    return path


def ensure_dest_credentials(creds_file: Path, htpasswd: Path) -> None:
    """A user and random password, kept 0600 as `user:password`; the htpasswd entry from stdin."""
    if creds_file.exists() and htpasswd.exists():
        return
    password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(48))
    fd = os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{DEST_USER}:{password}")
    # -i reads the password from stdin, so it never shows on a command line.
    result = subprocess.run(["htpasswd", "-niB", DEST_USER], input=password, capture_output=True, text=True)
    if result.returncode != 0:
        raise LabcheckError("htpasswd failed to hash the destination password",
                            hint="is apache2-utils installed?")
    fd = os.open(htpasswd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(result.stdout.strip() + "\n")


def dockerd_argv(data_root: Path, exec_root: Path, sockets: list[str], pidfile: Path) -> list[str]:
    argv = [
        "dockerd", "--iptables=false", "--ip-masq=false", "--bridge=none",
        f"--data-root={data_root}", f"--exec-root={exec_root}", f"--pidfile={pidfile}",
    ]
    for sock in sockets:
        argv.append(f"--host=unix://{sock}")
    return argv


def write_podman_config(podman_dir: Path) -> dict[str, Path]:
    """containers.conf, storage.conf and registries.conf of the lab world's own (not the user's)."""
    for sub in ("graph", "run", "tmp", "networks"):
        (podman_dir / sub).mkdir(parents=True, exist_ok=True)
    soft_nofile, hard_nofile = _limits("RLIMIT_NOFILE", 1024)
    soft_nproc, hard_nproc = _limits("RLIMIT_NPROC", 4096)
    containers_conf = podman_dir / "containers.conf"
    # runc: crun refuses this machine's cgroup v1 hybrid; explicit ulimits: podman's defaults
    # exceed the hard limits here; host networking: no CNI bridge or iptables needed.
    containers_conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={soft_nofile}:{hard_nofile}", "nproc={soft_nproc}:{hard_nproc}"]\n'
        'netns = "host"\n'
        "\n[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{podman_dir / "events.log"}"\n'
        f'tmp_dir = "{podman_dir / "tmp"}"\n'
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
