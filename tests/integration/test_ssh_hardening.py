"""SSH that does not stall or miss what ssh itself would use, against a real sshd on loopback: both
output streams drained together, the system's known_hosts, an Include in the ssh config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.hosts.hostkeys import SYSTEM_KNOWN_HOSTS, KnownHosts
from labcheck.hosts.pool import ConnectionPool, PoolOptions
from labcheck.hosts.targets import Target
from labcheck.labenv.world import LabWorld
from tests.classroom import Classroom, Student

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs sshd: root only")]

SCENARIO = """\
id: reach
title: Reach the host
steps:
  - id: whoami
    title: The student's shell answers
    verify:
      - command: {run: whoami, stdout_contains: "%s"}
"""


@pytest.fixture(scope="module")
def room(lab_world: LabWorld):
    room = Classroom(lab_world, tag=f"lh{os.getpid() % 100000}")
    try:
        room.add_students(["ssh"])
        room.start_sshd()
        yield room
    finally:
        room.close()


def target(room: Classroom, student: Student, **kwargs) -> Target:
    return Target(name=student.name, backend="ssh", hostname=student.address, port=room.port, user=student.name,
                  identity_file=str(room.class_key), **kwargs)


@pytest.mark.parametrize("command", [
    "head -c 8000000 /dev/zero | tr '\\0' e >&2; echo done",  # stderr fills the window while stdout is open
    "for i in 1 2 3 4 5 6 7 8; do head -c 1000000 /dev/zero | tr '\\0' o; head -c 1000000 /dev/zero | tr '\\0' e >&2;"
    " done; echo done",  # both, interleaved
], ids=["stderr-first", "interleaved"])
def test_a_command_writing_more_than_the_window_to_stderr_does_not_stall(room: Classroom, command: str) -> None:
    student = room.students[0]
    pool = ConnectionPool(PoolOptions(known_hosts=KnownHosts(str(room.known_hosts), system_paths=()),
                                      command_timeout=20))
    try:
        result = pool.host(target(room, student)).run(command)
    finally:
        pool.close_all()
    assert result.rc == 0, result.stderr[-200:]
    assert result.stdout.endswith("done\n")
    assert len(result.stderr) == 8_000_000 and set(result.stderr) == {"e"}
    assert len(result.stdout) in (len("done\n"), 8_000_000 + len("done\n"))


def test_host_keys_in_the_system_known_hosts_are_trusted(room: Classroom, tmp_path: Path) -> None:
    assert SYSTEM_KNOWN_HOSTS[0] == "/etc/ssh/ssh_known_hosts"  # what ssh reads besides ~/.ssh/known_hosts
    student = room.students[0]
    system = tmp_path / "ssh_known_hosts"
    system.write_text(room.known_hosts.read_text())
    user_file = tmp_path / "empty_known_hosts"
    trusted = KnownHosts(str(user_file), system_paths=(str(tmp_path / "absent"), str(system)))
    pool = ConnectionPool(PoolOptions(known_hosts=trusted))
    try:
        assert pool.host(target(room, student)).run("whoami").stdout.strip() == student.name
    finally:
        pool.close_all()
    assert not user_file.exists() and trusted.recorded == []  # trusted, not recorded on first use
    # Without the system file, the same key is unknown.
    untrusted = ConnectionPool(PoolOptions(known_hosts=KnownHosts(str(user_file), system_paths=())))
    with pytest.raises(Exception, match="unknown host key .* it is in none of"):
        untrusted.host(target(room, student))


def test_a_host_defined_in_an_included_ssh_config_is_reached(room: Classroom, tmp_path: Path) -> None:
    student = room.students[0]
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "class.conf").write_text(
        f"Host student-vm\n  HostName {student.address}\n  Port {room.port}\n  User {student.name}\n"
        f"  IdentityFile {room.class_key}\n")
    config = tmp_path / "ssh_config"
    config.write_text(f"Include {tmp_path}/conf.d/*.conf\n")
    scenario = tmp_path / "reach.yaml"
    scenario.write_text(SCENARIO % student.name)
    result = subprocess.run([sys.executable, "-m", "labcheck.cli", "verify", str(scenario), "--hosts",
                             "ssh://student-vm", "--ssh-config", str(config), "--known-hosts", str(room.known_hosts)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1/1 steps passed" in result.stdout
