"""A class of students on this machine: Unix users, one sshd on loopback (each student its own 127.0.0.x),
keys, known_hosts and an inventory. Used by tests/integration/test_class.py and bench/bench_class.py.

Students share the lab world's registries and dockerd; each gets their own Docker name and
destination repository through the inventory's per-host vars, so their states never collide.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from labcheck.labenv.world import LabWorld

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "skopeo-moving-sharing.yaml"
SSHD = "/usr/sbin/sshd"


@dataclass
class Student:
    name: str  # the Unix user and the inventory name
    address: str  # the 127.0.0.x its sshd address is
    home: Path
    authorised: bool = True


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))  # free on every address, so on each 127.0.0.x too
        return sock.getsockname()[1]


class Classroom:
    """Everything is created under one directory and by one set of users; close() removes it all."""

    def __init__(self, world: LabWorld, *, tag: str | None = None) -> None:
        self.world = world
        self.tag = tag or f"lc{os.getpid() % 100000}"
        self.root = Path(tempfile.mkdtemp(prefix="labcheck-class-"))
        self.root.chmod(0o755)
        self.students: list[Student] = []
        self.port = _free_port()
        self.sshds: list[subprocess.Popen[bytes]] = []
        self.sshd_logs: list[Path] = []
        self.known_hosts = self.root / "known_hosts"
        self._modes: dict[Path, int] = {}
        (self.root / "keys").mkdir()
        for key in ("class", "stranger"):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"labcheck {key}", "-f",
                  str(self.root / "keys" / key)])
        self.class_key = self.root / "keys" / "class"
        self.stranger_key = self.root / "keys" / "stranger"
        self._student_configs()
        self._grant_lab_world()

    # --- users -----------------------------------------------------------------------------

    def add_students(self, roles: list[str], *, unauthorised: tuple[str, ...] = (), plain: bool = False) -> list[Student]:
        """Users with the class key; plain: nothing of podman's prepared for them (no storage.conf, no
        runtime directory), as a fresh account on a lab server has."""
        added = []
        for role in roles:
            name = f"{self.tag}{role}"[:32]
            address = f"127.0.0.{11 + len(self.students)}"
            _run(["useradd", "--create-home", "--shell", "/bin/bash", "--groups", "docker", name])
            _run(["usermod", "--password", "*", name])  # no password, but not a locked account for sshd
            home = Path(pwd.getpwnam(name).pw_dir)
            student = Student(name, address, home, authorised=role not in unauthorised)
            self._prepare_home(student, plain=plain)
            self.students.append(student)
            added.append(student)
        return added

    def _prepare_home(self, student: Student, *, plain: bool = False) -> None:
        entry = pwd.getpwnam(student.name)
        ssh = student.home / ".ssh"
        ssh.mkdir(mode=0o700)
        key = self.class_key if student.authorised else self.stranger_key
        # An unauthorised student's own key is the stranger's; the inventory offers the class key.
        (ssh / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
        (ssh / "authorized_keys").chmod(0o600)
        if plain:
            for path in (ssh, ssh / "authorized_keys"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            return
        config = student.home / ".config" / "containers"
        config.mkdir(parents=True)
        (config / "storage.conf").write_text(
            "[storage]\n"
            'driver = "vfs"\n'
            f'graphroot = "{student.home}/.local/share/containers/storage"\n'
            f'runroot = "{self.runtime_dir(student)}/containers"\n'
        )
        runtime = self.runtime_dir(student)
        runtime.mkdir(parents=True, mode=0o700)
        for path in (ssh, ssh / "authorized_keys", student.home / ".config", config, config / "storage.conf", runtime):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def runtime_dir(self, student: Student) -> Path:
        return self.root / "run" / student.name

    def _student_configs(self) -> None:
        """containers.conf for rootless podman here: runc (crun refuses cgroup v1 hybrid), cgroupfs, ulimits."""
        podman = self.root / "podman"
        podman.mkdir()
        (podman / "containers.conf").write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
            'netns = "host"\n'
            "\n[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
        )
        (self.root / "run").mkdir(mode=0o755)

    def _grant_lab_world(self) -> None:
        """Students reach the lab world's CA bundle, registries.conf and Docker socket: o+x on its directories
        (a test session's lab world lives under pytest's 0700 temporary directory). Undone by close()."""
        env = self.world.env()
        for file in (env["SSL_CERT_FILE"], env["CONTAINERS_REGISTRIES_CONF"], env["DOCKER_HOST"].removeprefix("unix://")):
            for parent in Path(file).parents:
                mode = parent.stat().st_mode & 0o7777
                if not mode & 0o001:
                    self._modes.setdefault(parent, mode)
                    parent.chmod(mode | 0o001)

    # --- sshd ------------------------------------------------------------------------------

    def start_sshd(self) -> None:
        sshd_dir = self.root / "sshd"
        sshd_dir.mkdir()
        host_key = sshd_dir / "host_ed25519"
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)])
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        # sshd listens on at most 16 addresses (MAX_LISTEN_SOCKS): one sshd per 16 students.
        for first in range(0, len(self.students), 16):
            self._start_one_sshd(sshd_dir, host_key, self.students[first:first + 16], first // 16)
        public = Path(f"{host_key}.pub").read_text().split()
        self.known_hosts.write_text("".join(f"[{s.address}]:{self.port} {public[0]} {public[1]}\n"
                                            for s in self.students))
        deadline = time.monotonic() + 10
        for student in self.students:
            while True:
                try:
                    socket.create_connection((student.address, self.port), timeout=1).close()
                    break
                except OSError:
                    if any(p.poll() is not None for p in self.sshds) or time.monotonic() > deadline:
                        logs = "".join(log.read_text()[-500:] for log in self.sshd_logs if log.exists())
                        raise RuntimeError(f"sshd did not start: {logs}") from None
                    time.sleep(0.05)

    def _start_one_sshd(self, sshd_dir: Path, host_key: Path, students: list[Student], index: int) -> None:
        listen = "".join(f"ListenAddress {s.address}:{self.port}\n" for s in students)
        config = sshd_dir / f"sshd_config.{index}"
        log = sshd_dir / f"sshd.{index}.log"
        config.write_text(
            f"{listen}"
            f"HostKey {host_key}\n"
            f"PidFile {sshd_dir / f'sshd.{index}.pid'}\n"
            "AuthorizedKeysFile .ssh/authorized_keys\n"
            "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nLogLevel VERBOSE\nSubsystem sftp internal-sftp\n"
            # A whole class connects at once: sshd's default (10 unauthenticated) drops some.
            "MaxStartups 200\nMaxSessions 50\n"
        )
        self.sshds.append(subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log)], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.sshd_logs.append(log)

    def accepted_sessions(self, offset: list[int] | None = None) -> dict[str, int]:
        """SSH connections the sshds accepted per user, in their logs after the offsets of log_offset()."""
        counts: dict[str, int] = {}
        for index, path in enumerate(self.sshd_logs):
            with open(path, "rb") as log:
                log.seek(offset[index] if offset else 0)
                for line in log.read().decode(errors="replace").splitlines():
                    if "Accepted publickey for " in line:
                        user = line.split("Accepted publickey for ", 1)[1].split()[0]
                        counts[user] = counts.get(user, 0) + 1
        return counts

    def log_offset(self) -> list[int]:
        return [log.stat().st_size if log.exists() else 0 for log in self.sshd_logs]

    # --- inventory and labcheck ------------------------------------------------------------

    def inventory(self, *, extra: list[dict] | None = None, groups: dict[str, list[str]] | None = None,
                  path: Path | None = None, scenario_vars: bool = True) -> Path:
        """The class as an inventory; scenario_vars: each student's own Docker name and destination (Skopeo lab)."""
        env = self.world.env()
        data = {
            "defaults": {
                "port": self.port,
                "identity_file": str(self.class_key),
                "env": {
                    "CONTAINERS_CONF": str(self.root / "podman" / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": "{{ home }}/.config/containers/storage.conf",
                    "CONTAINERS_REGISTRIES_CONF": env["CONTAINERS_REGISTRIES_CONF"],
                },
            },
            "students": [
                {
                    "name": s.name, "host": s.address, "user": s.name,
                    "vars": {"dest": f"{{{{ lab.dest_registry }}}}/{s.name}",
                             "docker_repo": f"{{{{ source }}}}/fedora-{s.name}"} if scenario_vars else {},
                    "env": {"XDG_RUNTIME_DIR": str(self.runtime_dir(s))},
                }
                for s in self.students
            ] + list(extra or []),
            "groups": groups or {},
        }
        path = path or self.root / "class.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def labcheck(self, mode: str, inventory: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "labcheck.cli", mode, str(SCENARIO), "--inventory", str(inventory),
                "--known-hosts", str(self.known_hosts), *extra]
        return subprocess.run(argv, env={**os.environ, **self.world.env()}, capture_output=True, text=True,
                              timeout=timeout)

    def as_student(self, student: Student, command: str) -> subprocess.CompletedProcess[str]:
        """A shell command as the student, with their podman environment (for setting up states)."""
        env = (f"export XDG_RUNTIME_DIR={self.runtime_dir(student)} "
               f"CONTAINERS_CONF={self.root / 'podman' / 'containers.conf'} "
               f"CONTAINERS_STORAGE_CONF={student.home}/.config/containers/storage.conf; ")
        return subprocess.run(["su", "-", student.name, "-c", env + command], capture_output=True, text=True,
                              timeout=120)

    # --- teardown ----------------------------------------------------------------------------

    def close(self) -> None:
        for student in self.students:
            self.as_student(student, "podman rm -f --all --time 1 >/dev/null 2>&1; podman system migrate >/dev/null 2>&1")
        for sshd in self.sshds:
            sshd.terminate()
            try:
                sshd.wait(10)
            except subprocess.TimeoutExpired:
                sshd.kill()
                sshd.wait()
        for student in self.students:
            _kill_user_processes(student.name)
            uid = pwd.getpwnam(student.name).pw_uid
            # podman's (and labcheck's) runtime directory of a session that had none
            shutil.rmtree(f"{os.environ.get('TMPDIR') or '/tmp'}/podman-run-{uid}", ignore_errors=True)
            subprocess.run(["userdel", "--remove", "--force", student.name], capture_output=True)
        for path, mode in self._modes.items():
            if path.exists():
                path.chmod(mode)
        shutil.rmtree(self.root, ignore_errors=True)


def _kill_user_processes(user: str) -> None:
    """The processes this class's tests started as the user (podman's pause process, conmon, containers), by pid."""
    uid = pwd.getpwnam(user).pw_uid
    for _ in range(20):
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == uid]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def _owner(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None
