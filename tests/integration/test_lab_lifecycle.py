"""`labcheck lab` up/down/status and its errors, on lab worlds of the tests' own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.labenv.world import LabWorld

pytestmark = pytest.mark.lab


def labcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labcheck.cli", *args], capture_output=True, text=True, timeout=180)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_down_leaves_nothing_running_and_up_works_again(tmp_path: Path) -> None:
    state = tmp_path / "world"
    assert labcheck("lab", "--state-dir", str(state), "up").returncode == 0
    world = LabWorld(state)
    env = {**os.environ, **world.env()}
    run = subprocess.run(["podman", "run", "--name", "meta-data-container", "-id",
                          f"{world.source_registry}/fedora", "bash"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    container_pid = json.loads(subprocess.run(["podman", "inspect", "meta-data-container"], env=env,
                                              capture_output=True, text=True).stdout)[0]["State"]["Pid"]
    daemon_pids = [world.source.pid(), world.dest.pid(), world.dockerd.pid()]
    assert None not in daemon_pids and alive(container_pid)
    assert processes_mentioning(str(state))

    down = labcheck("lab", "--state-dir", str(state), "down")
    assert down.returncode == 0, down.stderr
    assert processes_mentioning(str(state)) == []
    assert not any(alive(pid) for pid in [*daemon_pids, container_pid])
    status = labcheck("lab", "--state-dir", str(state), "status")
    assert status.returncode == 1 and "DOWN" in status.stdout

    again = labcheck("lab", "--state-dir", str(state), "up")
    assert again.returncode == 0, again.stderr
    assert labcheck("lab", "--state-dir", str(state), "status").returncode == 0
    assert labcheck("lab", "--state-dir", str(state), "down", "--purge").returncode == 0
    assert not state.exists()
    assert processes_mentioning(str(state)) == []


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unknown_subcommand_is_a_usage_error() -> None:
    assert "invalid choice: 'sideways'" in one_line_error(labcheck("lab", "sideways"))
    assert "invalid choice" in one_line_error(labcheck("frobnicate"))


def test_state_dir_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    afile = tmp_path / "not-a-dir"
    afile.write_text("x")
    assert "is not a directory" in one_line_error(labcheck("lab", "--state-dir", str(afile), "up"))


def test_a_port_already_held_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        line = one_line_error(labcheck("lab", "--state-dir", str(tmp_path / "w"), "up", "--source-port", str(port)))
    assert f"port {port}" in line and "already in use" in line
    assert LabWorld(tmp_path / "w").source.pid() is None


def test_env_before_up_says_what_to_do(tmp_path: Path) -> None:
    result = labcheck("lab", "--state-dir", str(tmp_path / "none"), "env")
    assert result.returncode == 1
    assert "labcheck lab up" in result.stderr and "Traceback" not in result.stderr
