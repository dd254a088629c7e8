"""contrib/ansible/labcheck-class.yml with ansible-core from PyPI, against students behind the real sshd.

Three plain users on loopback (each their own 127.0.0.x; one did the page's steps, two never
started) stand for three VMs, plus an address where nothing listens. Ansible logs in as each
student with the class key, runs `labcheck check --json` there, fetches the results, and
`labcheck report` merges them into the dashboard.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.labenv.userenv import share_with_students
from labcheck.labenv.world import LabWorld
from tests.classroom import Classroom
from tests.integration.test_rootless import AS_STUDENT, _page_steps, _su

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs sshd: root only")]

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "contrib" / "ansible" / "labcheck-class.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
DEAD = "127.0.0.251"


@pytest.fixture(scope="module")
def classroom(lab_world: LabWorld):
    creds = lab_world.creds_file.stat()
    share_with_students(lab_world)  # what `labcheck lab up` does; undone below for the session's other tests
    room = Classroom(lab_world, tag=f"an{os.getpid() % 10000}")
    try:
        done, *fresh = room.add_students(["done", "new1", "new2"], plain=True)
        room.start_sshd()
        result = _su(done, _page_steps(lab_world))
        assert result.returncode == 0, result.stdout + result.stderr
        yield room, done, fresh
        _su(done, f"eval \"$({AS_STUDENT} lab --state-dir {lab_world.state_dir} env)\"; "
                  f"docker rmi {lab_world.source_registry}/fedora:latest >/dev/null 2>&1; "
                  f"podman rm -f --all --time 1 >/dev/null 2>&1")
    finally:
        room.close()
        os.chown(lab_world.creds_file, creds.st_uid, creds.st_gid)
        lab_world.creds_file.chmod(creds.st_mode & 0o7777)


def _inventory(room: Classroom, path: Path) -> Path:
    lines = ["[students]"]
    lines += [f"{s.name} ansible_host={s.address} ansible_user={s.name}" for s in room.students]
    lines += [f"gone ansible_host={DEAD} ansible_user=nobody"]
    lines += ["", "[students:vars]", f"ansible_port={room.port}", f"ansible_ssh_private_key_file={room.class_key}",
              f"ansible_ssh_common_args='-o UserKnownHostsFile={room.known_hosts} -o StrictHostKeyChecking=yes'",
              "ansible_python_interpreter=/usr/bin/python3"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _playbook(room: Classroom, world: LabWorld, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    extra = {
        "labcheck_command": AS_STUDENT,  # labcheck as installed "on the VM"
        "labcheck_environment": {"LABCHECK_STATE_DIR": str(world.state_dir)},
        "labcheck_results_dir": str(tmp_path / "results"),
        "labcheck_dashboard": str(tmp_path / "class.html"),
        "labcheck_report_command": f"{sys.executable} -m labcheck.cli",
        "labcheck_batch": 2,  # batches of two: the dead address alone in the second
    }
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    ansible_home = tmp_path / "ansible"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABCHECK_", "CONTAINERS_", "DOCKER_"))}
    env.update(ANSIBLE_HOME=str(ansible_home), ANSIBLE_LOCAL_TEMP=str(ansible_home / "tmp"),
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(ansible_home / "cp"), ANSIBLE_TIMEOUT="5",
               ANSIBLE_FORKS="10", ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    return subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(_inventory(room, tmp_path / "hosts.ini")),
                           str(PLAYBOOK), "-e", f"@{tmp_path / 'vars.json'}"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_the_playbook_checks_every_student_and_merges_the_dashboard(classroom, lab_world: LabWorld,
                                                                    tmp_path: Path) -> None:
    room, done, fresh = classroom
    result = _playbook(room, lab_world, tmp_path)
    output = result.stdout + result.stderr
    # The dead address is reported by Ansible (its recap) and leaves the others untouched.
    assert "gone" in output and "UNREACHABLE" in output, output[-3000:]
    assert result.returncode == 2 and "not reached: gone" in output  # after the dashboard was made
    assert "labcheck report: 3 hosts × 6 steps from 3 run(s)" in output, output[-3000:]

    results = sorted((tmp_path / "results").glob("*.json"))
    assert sorted(p.name.split(".")[0] for p in results) == sorted(s.name for s in room.students)
    by_host = {}
    for path in results:
        data = json.loads(path.read_text())
        assert data["mode"] == "check" and data["profile"] == "offline"
        (host,) = data["hosts"]
        by_host[host["name"]] = [step["status"] for step in host["steps"]]
    assert by_host[done.name] == ["passed"] * 6
    assert all(by_host[s.name] == ["failed"] * 6 for s in fresh)
    assert "permission denied" not in output.lower()

    page = (tmp_path / "class.html").read_text()
    for student in room.students:
        assert student.name in page
    assert "gone" not in page.split("<body", 1)[1].split("</table>", 1)[0]  # no row for a host never reached
    # Nothing is left in the students' home directories' temporary space.
    for student in room.students:
        leftovers = list(student.home.glob(".ansible/tmp/*")) + list(Path("/tmp").glob("ansible.*.labcheck.json"))
        assert not [p for p in leftovers if p.owner() == student.name]

    # A second run adds its results beside the first; the dashboard merges both (the latest wins).
    again = _playbook(room, lab_world, tmp_path)
    assert "labcheck report: 3 hosts × 6 steps from 6 run(s)" in again.stdout + again.stderr, again.stdout[-3000:]
    shutil.rmtree(tmp_path / "ansible", ignore_errors=True)
