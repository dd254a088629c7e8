"""A whole class over SSH: real users, one real sshd on loopback (a 127.0.0.x per student), the lab world."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labcheck.labenv.world import LabWorld
from tests.classroom import Classroom, Student

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs sshd: root only")]

STEPS = ["remote-inspect", "metadata-container", "pull-to-storage", "pull-to-dir", "podman-to-docker",
         "registry-to-registry"]
ROLES = ["done", "dir", "corrupt", "podman", "new", "refused"]
P, F, U = "passed", "failed", "unreachable"
EXPECTED = {
    "done": [P, P, P, P, P, P],
    "dir": [P, F, F, P, F, F],  # a remote inspect leaves no trace: it is done once a later step is
    "corrupt": [F, F, F, F, F, F],
    "podman": [P, P, P, F, F, F],
    "new": [F, F, F, F, F, F],
    "refused": [U] * 6,
    "down": [U] * 6,
}


class Class:
    def __init__(self, room: Classroom, students: dict[str, Student]) -> None:
        self.room = room
        self.students = students
        self.down_address = "127.0.0.250"  # nothing listens there
        self.inventory = room.inventory(
            extra=[{"name": "down", "host": self.down_address}],
            groups={"finished-and-down": [students["done"].name, "down"],
                    "reachable": [s.name for r, s in students.items() if r != "refused"]},
        )

    def name(self, role: str) -> str:
        return "down" if role == "down" else self.students[role].name


@pytest.fixture(scope="session")
def klass(lab_world: LabWorld) -> Class:
    room = Classroom(lab_world)
    try:
        students = dict(zip(ROLES, room.add_students(ROLES, unauthorised=("refused",))))
        room.start_sshd()
        klass = Class(room, students)
        _set_up_states(klass)
        yield klass
        room.labcheck("reset", klass.inventory, "--limit", "reachable")
    finally:
        room.close()


def _set_up_states(klass: Class) -> None:
    """Each student's state, made with labcheck run over SSH as that student (several at once)."""
    room = klass.room
    runs = {
        "done": [],
        "dir": ["-k", "remote-inspect or pull-to-dir"],
        "corrupt": ["-k", "pull-to-dir"],
        "podman": ["-k", "remote-inspect or metadata-container or pull-to-storage"],
    }
    with ThreadPoolExecutor(len(runs)) as pool:
        done = {role: pool.submit(room.labcheck, "run", klass.inventory, "--limit", klass.name(role), *argv)
                for role, argv in runs.items()}
    for role, future in done.items():
        result = future.result()
        assert result.returncode == 0, f"{role}: {result.stdout[-3000:]}{result.stderr[-2000:]}"
    layout = klass.students["corrupt"].home / "fedora-skopeo"
    manifest = json.loads((layout / "manifest.json").read_text())
    layer = layout / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))


def junit_matrix(path: Path) -> dict[str, dict[str, str]]:
    """host → step → passed/failed/skipped, from JUnit XML (test names are step[host])."""
    matrix: dict[str, dict[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        step, host = case.get("name").rstrip("]").split("[", 1)
        status = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                status = "unreachable" if "UNREACHABLE" in (child.get("message", "") + (child.text or "")) else "failed"
            elif child.tag == "skipped":
                status = "skipped"
        matrix.setdefault(host, {})[step] = status
    return matrix


def test_the_class_matrix_with_reasons_and_one_connection_per_host(klass: Class, tmp_path: Path) -> None:
    junit = tmp_path / "class.xml"
    offset = klass.room.log_offset()
    result = klass.room.labcheck("verify", klass.inventory, "--junitxml", str(junit))
    out = result.stdout + result.stderr
    assert result.returncode == 3, out  # some hosts could not be reached: that outranks the failed checks
    matrix = junit_matrix(junit)
    for role, statuses in EXPECTED.items():
        assert [matrix[klass.name(role)][step] for step in STEPS] == statuses, (role, out[-4000:])
    refused = klass.students["refused"]
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "authentication refused" in rows[refused.name], result.stdout
    assert "connection refused" in rows["down"], result.stdout
    assert rows[klass.name("done")].split()[-1] == "6/6"
    assert rows[klass.name("dir")].split()[-1] == "2/6"
    assert rows["passed"].split()[1:7] == ["3", "2", "2", "2", "1", "1"], result.stdout
    # One connection per reachable host for the whole run, whatever the number of checks.
    sessions = klass.room.accepted_sessions(offset)
    reachable = [s.name for r, s in klass.students.items() if r != "refused"]
    assert sessions == {name: 1 for name in reachable}, sessions


def test_exit_code_3_when_the_only_problem_is_an_unreachable_host(klass: Class) -> None:
    result = klass.room.labcheck("verify", klass.inventory, "--limit", "finished-and-down")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "connection refused" in result.stdout


def test_exit_code_1_when_every_host_was_reached_and_some_failed(klass: Class) -> None:
    result = klass.room.labcheck("verify", klass.inventory, "--limit", "reachable")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "(of 5 reachable, 0 unreachable)" in result.stdout, result.stdout


def test_checks_run_as_the_student_with_their_own_rootless_podman(klass: Class, tmp_path: Path) -> None:
    scenario = tmp_path / "whoami.yaml"
    scenario.write_text(
        "id: whoami\ntitle: Who am I\nsteps:\n"
        "  - id: me\n    title: Me\n    verify:\n"
        "      - command: {run: 'id -un; echo $HOME', stdout_contains: ['{{ user }}', '{{ home }}']}\n"
        "      - command: {run: 'podman info', stdout_contains: '{{ home }}/.local/share/containers/storage'}\n"
    )
    students = [klass.students["dir"], klass.students["new"]]
    inventory = klass.room.inventory(scenario_vars=False, path=tmp_path / "plain.yaml")
    argv = [sys.executable, "-m", "labcheck.cli", "verify", str(scenario), "--inventory", str(inventory),
            "--known-hosts", str(klass.room.known_hosts), "--limit", ",".join(s.name for s in students)]
    result = subprocess.run(argv, env={**os.environ, **klass.room.world.env()}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(f"{s.name}  ✔  1/1" in result.stdout for s in students), result.stdout


def test_host_keys_unknown_changed_and_accepted_on_first_use(klass: Class, tmp_path: Path) -> None:
    room = klass.room
    done = klass.students["done"]
    empty = tmp_path / "known_hosts"
    argv = [sys.executable, "-m", "labcheck.cli", "verify", str(room_scenario()), "--inventory", str(klass.inventory),
            "--limit", done.name, "-k", "remote-inspect", "--known-hosts", str(empty)]
    env = {**os.environ, **room.world.env()}
    unknown = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 3 and "unknown host key" in unknown.stdout, unknown.stdout
    accepted = subprocess.run([*argv, "--accept-new-host-keys"], env=env, capture_output=True, text=True, timeout=120)
    assert accepted.returncode == 0, accepted.stdout
    assert f"[{done.address}]:{room.port} ssh-ed25519 " in empty.read_text()
    # The same address now presents another key: refused, loudly, even with --accept-new-host-keys.
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, key = Path(f"{other}.pub").read_text().split()[:2]
    empty.write_text(f"[{done.address}]:{room.port} {kind} {key}\n")
    changed = subprocess.run([*argv, "--accept-new-host-keys"], env=env, capture_output=True, text=True, timeout=120)
    assert changed.returncode == 3 and "HOST KEY CHANGED" in changed.stdout, changed.stdout


def test_uris_ssh_config_aliases_and_proxy_jump(klass: Class, tmp_path: Path) -> None:
    room = klass.room
    done, new = klass.students["done"], klass.students["new"]
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host alice-vm\n  HostName {done.address}\n  User {done.name}\n  Port {room.port}\n"
        f"  IdentityFile {room.class_key}\n"
        f"Host bob-behind-jump\n  HostName {new.address}\n  User {new.name}\n  Port {room.port}\n"
        f"  IdentityFile {room.class_key}\n  ProxyJump alice-vm\n"
    )
    uri = f"paramiko://{done.name}@{done.address}:{room.port}?ssh_identity_file={room.class_key}"
    argv = [sys.executable, "-m", "labcheck.cli", "verify", str(room_scenario()), "--known-hosts", str(room.known_hosts),
            "--ssh-config", str(config), "--hosts", f"{uri},ssh://alice-vm,ssh://bob-behind-jump", "-k", "remote-inspect"]
    offset = room.log_offset()
    result = subprocess.run(argv, env={**os.environ, **room.world.env()}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.endswith("1/6") and "✔" in line]
    assert "3 hosts" in result.stdout and len(rows) == 3, result.stdout
    # alice: the URI, the alias and the jump host; bob only through the jump.
    assert room.accepted_sessions(offset) == {done.name: 3, new.name: 1}


def test_a_slow_host_times_out_alone(klass: Class, tmp_path: Path) -> None:
    room = klass.room
    done, new = klass.students["done"], klass.students["new"]
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        "id: slow\ntitle: Slow\nsteps:\n"
        "  - id: quick\n    title: Quick\n    verify: [{command: {run: 'true'}}]\n"
        "  - id: sleepy\n    title: Sleepy\n    verify: [{command: {run: 'test \"$(id -un)\" = " + new.name + " && sleep 30 || true'}}]\n"
        "  - id: after\n    title: After\n    verify: [{command: {run: 'true'}}]\n"
    )
    inventory = room.inventory(scenario_vars=False, path=tmp_path / "plain.yaml")
    argv = [sys.executable, "-m", "labcheck.cli", "verify", str(slow), "--inventory", str(inventory),
            "--known-hosts", str(room.known_hosts), "--limit", f"{done.name},{new.name}", "--check-timeout", "2"]
    result = subprocess.run(argv, env={**os.environ, **room.world.env()}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert rows[done.name].split()[-1] == "3/3"
    assert "unreachable" not in rows[done.name]
    assert "gave no answer within 2s" in result.stdout


def room_scenario() -> Path:
    from tests.classroom import SCENARIO

    return SCENARIO


def test_verify_checks_a_hosts_steps_side_by_side_and_run_one_after_another(klass: Class, tmp_path: Path) -> None:
    """Three steps meet at a barrier on the host: each marks that it started, then waits (5 s at most)
    for the other two. Side by side (verify) all three meet; one after another (run) the first two
    give up, and only the last finds the others' marks."""
    room = klass.room
    student = klass.students["done"]
    steps = "".join(
        f"  - id: s{i}\n    title: Step {i}\n    verify:\n"
        f"      - command: {{run: 'mkdir -p $D && touch $D/{i} && for n in $(seq 100); do "
        f"[ -e $D/1 ] && [ -e $D/2 ] && [ -e $D/3 ] && exit 0; sleep 0.05; done; exit 1'}}\n"
        for i in (1, 2, 3))
    inventory = room.inventory(scenario_vars=False, path=tmp_path / "plain.yaml")
    for mode, expected in (("verify", [P, P, P]), ("run", [F, F, P])):
        barrier = f"{student.home}/barrier-{mode}-{os.getpid()}"
        scenario = tmp_path / f"barrier-{mode}.yaml"
        scenario.write_text(f"id: barrier\ntitle: Barrier\nsteps:\n{steps}".replace("$D", barrier))
        results = tmp_path / f"{mode}.json"
        argv = [sys.executable, "-m", "labcheck.cli", mode, str(scenario), "--inventory", str(inventory),
                "--known-hosts", str(room.known_hosts), "--limit", student.name, "--json", str(results)]
        result = subprocess.run(argv, env={**os.environ, **room.world.env()}, capture_output=True, text=True,
                                timeout=120)
        [host] = json.loads(results.read_text())["hosts"]
        assert [s["status"] for s in host["steps"]] == expected, (mode, result.stdout)
        assert result.returncode == (0 if mode == "verify" else 1), result.stdout + result.stderr
        room.as_student(student, f"rm -rf {barrier}")


def test_hosts_that_k_leaves_without_a_step_are_never_connected(klass: Class) -> None:
    done = klass.students["done"]
    offset = klass.room.log_offset()
    result = klass.room.labcheck("verify", klass.inventory, "--limit", "reachable", "-k", done.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert klass.room.accepted_sessions(offset) == {done.name: 1}
