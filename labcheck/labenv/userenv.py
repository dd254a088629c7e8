"""The lab world as a non-root user sees it: what every user may share, and what must be their own.

Root's lab world hands podman its own store (CONTAINERS_STORAGE_CONF) and a containers.conf whose
events log and temporary directory live in the state directory; both are root's, and a student's
rootless podman fails on them ("permission denied"). A student gets the registries, the lab CA
bundle, registries.conf and the Docker socket, a containers.conf without root's paths, their own
storage (podman's rootless default), and a runtime directory when the session has none.
"""

from __future__ import annotations

import grp
import os
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from labcheck.labenv.world import LabWorld

ROOTLESS_CONF = "containers-rootless.conf"
ROOTLESS_CONF_VARIABLE = "LABCHECK_ROOTLESS_CONTAINERS_CONF"
# Settings of root's containers.conf that name root's files: a rootless podman keeps its own defaults.
_ROOT_ONLY_KEYS = ("events_logfile_path", "tmp_dir", "network_config_dir")
# Never handed to a non-root user: root's image store and its graph and run roots.
_ROOT_ONLY_VARIABLES = ("CONTAINERS_STORAGE_CONF",)


def write_rootless_conf(containers_conf: Path) -> Path:
    """containers-rootless.conf beside root's containers.conf: the same runtime, cgroup manager, ulimits
    and network mode (what works on this machine), without root's paths; readable by every user."""
    kept = [line for line in containers_conf.read_text().splitlines()
            if not line.strip().startswith(_ROOT_ONLY_KEYS)]
    text = "\n".join(_without_empty_sections(kept)) + "\n"
    path = containers_conf.with_name(ROOTLESS_CONF)
    path.write_text(text)
    path.chmod(0o644)
    return path


def _without_empty_sections(lines: list[str]) -> list[str]:
    kept: list[str] = []
    for line in lines:
        if line.startswith("[") and kept and kept[-1].startswith("["):
            kept.pop()
        kept.append(line)
    while kept and (kept[-1].startswith("[") or not kept[-1].strip()):
        kept.pop()
    return kept


def for_user(lab_env: Mapping[str, str], *, uid: str, runtime_dir: str = "", session_runtime_dir: str = "") -> dict[str, str]:
    """The lab world's environment for the user with this uid ("" or "0": root's, unchanged).

    >>> env = {"CONTAINERS_CONF": "/s/podman/containers.conf", "CONTAINERS_STORAGE_CONF": "/s/podman/storage.conf",
    ...        "LABCHECK_ROOTLESS_CONTAINERS_CONF": "/s/podman/containers-rootless.conf", "SSL_CERT_FILE": "/s/b.crt"}
    >>> for_user(env, uid="1001", runtime_dir="/tmp/podman-run-1001")  # doctest: +NORMALIZE_WHITESPACE
    {'CONTAINERS_CONF': '/s/podman/containers-rootless.conf',
     'LABCHECK_ROOTLESS_CONTAINERS_CONF': '/s/podman/containers-rootless.conf', 'SSL_CERT_FILE': '/s/b.crt',
     'XDG_RUNTIME_DIR': '/tmp/podman-run-1001'}
    >>> for_user(env, uid="0") == env
    True
    """
    if uid in ("", "0"):
        return dict(lab_env)
    env = {k: v for k, v in lab_env.items() if k not in _ROOT_ONLY_VARIABLES}
    rootless_conf = lab_env.get(ROOTLESS_CONF_VARIABLE)
    if rootless_conf:
        env["CONTAINERS_CONF"] = rootless_conf
    else:
        env.pop("CONTAINERS_CONF", None)
    if runtime_dir and not session_runtime_dir:
        env["XDG_RUNTIME_DIR"] = runtime_dir
    return env


def own_runtime_dir() -> str:
    """This process's runtime directory as podman would choose it (XDG_RUNTIME_DIR, /run/user/UID if it
    is the user's, else $TMPDIR/podman-run-UID, made 0700); "" when none is usable."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.environ["XDG_RUNTIME_DIR"]
    uid = os.getuid()
    run_user = Path(f"/run/user/{uid}")
    if _owned_directory(run_user, uid):
        return str(run_user)
    fallback = Path(os.environ.get("TMPDIR") or "/tmp") / f"podman-run-{uid}"
    try:
        fallback.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return ""
    return str(fallback) if _owned_directory(fallback, uid) else ""


def _owned_directory(path: Path, uid: int) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid


def unreachable_by_others(paths: list[Path]) -> Path | None:
    """The first directory on the way to one of paths that other users cannot enter (no o+x), if any."""
    for path in paths:
        for parent in reversed(path.parents):
            try:
                if not parent.stat().st_mode & stat.S_IXOTH:
                    return parent
            except OSError:
                return parent
    return None


DOCKER_GROUP = "docker"  # dockerd's own default for its socket's group


def share_with_students(world: LabWorld) -> list[str]:
    """Open the lab world to the machine's other users, as far as is safe; notes for what is left to do.

    The CA bundle, registries.conf, the rootless containers.conf and state.json (for `labcheck lab
    env`) are made readable by all; the Docker sockets and the destination's credentials belong to
    the docker group (created if missing), so that access to the lab's dockerd and destination
    registry is granted by membership: gpasswd -a USER docker.
    """
    notes = []
    env = world.env()
    shared = [Path(env["SSL_CERT_FILE"]), Path(env["CONTAINERS_REGISTRIES_CONF"]), Path(env[ROOTLESS_CONF_VARIABLE]),
              world.state_dir / "state.json"]
    for path in shared:
        path.chmod(path.stat().st_mode | 0o444)
    try:
        gid = grp.getgrnam(DOCKER_GROUP).gr_gid
    except KeyError:
        subprocess.run(["groupadd", "--system", DOCKER_GROUP], capture_output=True, check=False)
        try:
            gid = grp.getgrnam(DOCKER_GROUP).gr_gid
        except KeyError:
            gid = None
            notes.append(f"no {DOCKER_GROUP} group (groupadd failed): only root may use the lab's Docker")
        else:
            notes.append(f"created the {DOCKER_GROUP} group: students use the lab's Docker once added to it "
                         f"(gpasswd -a USER {DOCKER_GROUP})")
    sockets = [Path(s) for s in world.settings().get("docker_sockets", [])]
    if gid is not None:
        for sock in sockets:
            if sock.is_socket() and sock.stat().st_gid != gid:
                os.chown(sock, -1, gid)
                sock.chmod(0o660)
        # The page hands its students the destination's password; here the group's members may read it
        # (the offline hint is --dest-creds "$(cat $LABCHECK_DEST_CREDS_FILE)"). Never anyone else.
        os.chown(world.creds_file, -1, gid)
        world.creds_file.chmod(0o640)
    closed = unreachable_by_others(shared + sockets)
    if closed is not None:
        notes.append(f"other users cannot reach this lab world: {closed} is closed to them (no o+x); "
                     f"for a shared lab server, use a --state-dir they can reach (e.g. /srv/labcheck/lab)")
    return notes
