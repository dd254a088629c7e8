"""Rootless students on the lab world's machine: plain --hosts URIs, no per-user settings.

Two non-root users behind the real sshd on loopback — one who did the page's steps with plain
podman, skopeo and docker as themselves, one who never started — and an address where nothing
listens. Only what `labcheck lab up` and `labcheck lab env` give them: no storage.conf, no runtime
directory, no inventory overrides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.labenv.userenv import share_with_students
from labcheck.labenv.world import LabWorld
from tests.classroom import SCENARIO, Classroom, Student

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs sshd: root only")]

REPO = Path(__file__).resolve().parents[2]
STEPS = ["remote-inspect", "metadata-container", "pull-to-storage", "pull-to-dir", "podman-to-docker",
         "registry-to-registry"]
# labcheck as a student runs it: the system's Python 3.11 (this venv's interpreter lives under /root),
# labcheck's sources and this venv's dependencies, all readable by every user.
AS_STUDENT = (f"PYTHONPATH={REPO}:{Path(sys.prefix) / 'lib' / f'python{sys.version_info[0]}.{sys.version_info[1]}' / 'site-packages'} "
              f"/usr/bin/python3 -m labcheck.cli")


def _page_steps(world: LabWorld, *, env: str = "") -> str:
    """The page's commands with the lab world's names, as a student types them after `eval "$(labcheck lab env)"`."""
    return f"""set -e
{env or f'eval "$({AS_STUDENT} lab --state-dir {world.state_dir} env)"'}
src=$LABCHECK_SOURCE_REGISTRY
skopeo inspect docker://$src/fedora >/dev/null
podman run --name meta-data-container -id $src/fedora bash
podman inspect meta-data-container >/dev/null
skopeo copy -q docker://$src/fedora containers-storage:fedora
skopeo copy -q docker://$src/fedora dir:$HOME/fedora-skopeo
skopeo copy -q containers-storage:$src/fedora docker-daemon:$src/fedora:latest --dest-daemon-host $DOCKER_HOST
docker images | grep -q $src/fedora
skopeo copy -q docker://$src/fedora docker://$LABCHECK_DEST_REGISTRY/$(id -un)/fedora --dest-creds "$(cat $LABCHECK_DEST_CREDS_FILE)"
"""


def _give_own_lab_world(student: Student, world: LabWorld) -> None:
    """A VM of its own, as far as this machine can show it: the student's state directory holds the env.sh
    of a lab world whose registries are named `localhost:PORT` (as on a VM's loopback), which the
    instructor's lab world (127.0.0.1:PORT) never names. The registries answer to both names."""
    result = _su(student, f"{AS_STUDENT} lab --state-dir {world.state_dir} env")
    assert result.returncode == 0, result.stderr
    state = student.home / ".local" / "state" / "labcheck" / "lab"
    _su(student, f"mkdir -p {state}")
    (state / "env.sh").write_text(result.stdout.replace("127.0.0.1:", "localhost:"))


def _su(student: Student, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["su", "-", student.name, "-c", script], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def server(lab_world: LabWorld):
    share_with_students(lab_world)  # what `labcheck lab up` does after starting the world
    room = Classroom(lab_world, tag=f"rl{os.getpid() % 10000}")
    try:
        done, new, vm = room.add_students(["done", "new", "vm"], plain=True)
        room.start_sshd()
        result = _su(done, _page_steps(lab_world))
        assert result.returncode == 0, result.stdout + result.stderr
        _give_own_lab_world(vm, lab_world)
        result = _su(vm, _page_steps(lab_world, env=". ~/.local/state/labcheck/lab/env.sh"))
        assert result.returncode == 0, result.stdout + result.stderr
        yield room, done, new, vm
        _su(done, f"eval \"$({AS_STUDENT} lab --state-dir {lab_world.state_dir} env)\"; "
                  f"docker rmi {lab_world.source_registry}/fedora:latest >/dev/null 2>&1; "
                  f"podman rm -f --all --time 1 >/dev/null 2>&1")
    finally:
        room.close()


def _uri(room: Classroom, student: Student) -> str:
    return f"paramiko://{student.name}@{student.address}:{room.port}?ssh_identity_file={room.class_key}"


def test_two_rootless_students_and_a_dead_address(server, lab_world: LabWorld, tmp_path: Path) -> None:
    room, done, new, vm = server
    hosts = ",".join([_uri(room, done), _uri(room, new), f"paramiko://nobody@127.0.0.251:{room.port}"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABCHECK_", "CONTAINERS_", "DOCKER_"))}
    env["LABCHECK_STATE_DIR"] = str(lab_world.state_dir)
    result = subprocess.run([sys.executable, "-m", "labcheck.cli", "verify", str(SCENARIO), "--hosts", hosts,
                             "--known-hosts", str(room.known_hosts), "--json", str(tmp_path / "r.json")],
                            env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr + (tmp_path / "r.json").read_text()
    assert result.returncode == 3, output
    assert "permission denied" not in output.lower()
    hosts_json = {h["name"]: h for h in json.loads((tmp_path / "r.json").read_text())["hosts"]}
    by_user = {name.split("@")[0].split("//")[-1]: h for name, h in hosts_json.items()}
    finished = by_user[done.name]["steps"]
    assert [s["status"] for s in finished] == ["passed"] * 6, json.dumps(finished, indent=1)[:4000]
    fresh = by_user[new.name]["steps"]
    assert [s["status"] for s in fresh] == ["failed"] * 6  # the remote inspect leaves no trace: not done while nothing later is, [(s["id"], s["reason"]) for s in fresh]
    assert all(s["hint"] for s in fresh[1:])
    assert [s["status"] for s in by_user["nobody"]["steps"]] == ["unreachable"] * 6


def test_a_students_own_check_works_the_same_way(server, lab_world: LabWorld) -> None:
    room, done, new, vm = server
    result = _su(done, f"LABCHECK_STATE_DIR={lab_world.state_dir} {AS_STUDENT} check skopeo-moving-sharing")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6/6 steps done" in result.stdout and "profile offline" in result.stdout
    result = _su(new, f"LABCHECK_STATE_DIR={lab_world.state_dir} {AS_STUDENT} check skopeo-moving-sharing")
    assert result.returncode == 1 and "0/6 steps done" in result.stdout, result.stdout + result.stderr
    assert "permission denied" not in (result.stdout + result.stderr).lower()


def test_a_vm_with_its_own_lab_world_is_checked_against_that_world(server, lab_world: LabWorld, tmp_path: Path) -> None:
    """lab.* of a host with a lab world of its own comes from that host (its state directory), not from the
    instructor's: the hint names localhost:PORT, and every check passes against the names the student used —
    registry questions included, asked by the host's own skopeo."""
    room, done, new, vm = server
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABCHECK_", "CONTAINERS_", "DOCKER_"))}
    env["LABCHECK_STATE_DIR"] = str(lab_world.state_dir)
    result = subprocess.run([sys.executable, "-m", "labcheck.cli", "verify", str(SCENARIO), "--hosts", _uri(room, vm),
                             "--known-hosts", str(room.known_hosts), "--json", str(tmp_path / "r.json")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (host,) = json.loads((tmp_path / "r.json").read_text())["hosts"]
    assert [s["status"] for s in host["steps"]] == ["passed"] * 6
    assert host["steps"][0]["hint"] == f"skopeo inspect docker://localhost:{lab_world.source_registry.split(':')[1]}/fedora"
    assert f"profile offline: found the lab world of {_uri(room, vm).split('?')[0].split('//')[1]}" in result.stdout
