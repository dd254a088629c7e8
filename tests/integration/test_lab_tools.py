"""`labcheck lab up` beyond Debian: tools found by what they are, on PATHs made of symlinks.

What can be simulated on this Debian machine: a machine without runc but with crun (Fedora/RHEL's
default runtime), the registry under Fedora's name `registry`, no `htpasswd` binary, no registry
at all. crun refuses this machine's cgroup v1 hybrid hierarchy (a cgroup2 mount with a controller
at /sys/fs/cgroup/unified), so the crun lab world runs in a private mount namespace where that
mount is hidden: a plain cgroup v1 machine, as RHEL 8 is, on which crun works.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.labenv.world import LabWorld

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="lab up needs root")]

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def path_without(tmp_path: Path, *, absent: set[str], renamed: dict[str, str] | None = None) -> str:
    """A one-directory PATH of symlinks to this machine's programs, without `absent`; renamed maps a
    new name to the program it links to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in SYSTEM_PATH.split(":"):
        for entry in sorted(Path(directory).iterdir()) if Path(directory).is_dir() else []:
            link = bin_dir / entry.name
            if entry.name in absent or link.exists() or link.is_symlink() or not os.access(entry, os.X_OK):
                continue
            link.symlink_to(entry)
    for name, program in (renamed or {}).items():
        (bin_dir / name).symlink_to(program)
    assert not absent & {p.name for p in bin_dir.iterdir()} - set(renamed or {})
    return str(bin_dir)


def labcheck(*args: str, path: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "labcheck.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PATH": path}, timeout=300)


def one_line_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_no_registry_binary_is_one_line_naming_the_package(tmp_path: Path) -> None:
    path = path_without(tmp_path, absent={"docker-registry", "registry"})
    line = one_line_exit_2(labcheck("lab", "--state-dir", str(tmp_path / "w"), "up", path=path))
    assert "distribution registry" in line
    assert "apt install docker-registry" in line and "dnf install docker-distribution" in line
    assert "internal error" not in line
    assert not (tmp_path / "w" / "run").exists()  # nothing was started


def test_only_crun_on_this_hybrid_machine_is_one_line_naming_runc(tmp_path: Path) -> None:
    """Detected, not guessed: crun runs a probe container and refuses; the line says why and what to install."""
    path = path_without(tmp_path, absent={"runc"})
    line = one_line_exit_2(labcheck("lab", "--state-dir", str(tmp_path / "w"), "up", path=path))
    assert "no OCI runtime can run a container on this machine" in line
    assert "crun" in line and "hybrid" in line
    assert "apt install runc / dnf install runc" in line


@pytest.fixture
def cgroup_v1_namespace():
    """A mount namespace (held by a sleeping process) in which /sys/fs/cgroup/unified is an empty tmpfs."""
    holder = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
         "mount -t tmpfs labcheck-no-unified /sys/fs/cgroup/unified && echo ready && exec sleep 3600"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    yield ("nsenter", f"--target={holder.pid}", "--mount", "--")
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()


def test_lab_up_with_crun_the_registry_named_registry_and_no_htpasswd(tmp_path: Path, cgroup_v1_namespace) -> None:
    enter = cgroup_v1_namespace
    path = path_without(tmp_path, absent={"runc", "docker-registry", "htpasswd"},
                        renamed={"registry": "/usr/bin/docker-registry"})
    state = tmp_path / "world"
    try:
        up = labcheck("lab", "--state-dir", str(state), "up", path=path, prefix=enter)
        assert up.returncode == 0, up.stderr
        world = LabWorld(state)
        conf = (state / "podman" / "containers.conf").read_text()
        assert 'runtime = "crun"' in conf and f'crun = ["{path}/crun"]' in conf
        assert 'cgroup_manager = "cgroupfs"' in conf  # no systemd here, and no unified hierarchy
        # Every registry, the sandbox's included, runs the binary found as `registry`.
        daemons = [world.source, world.dest, *world.page_registries.values()]
        programs = {Path(f"/proc/{d.pid()}/cmdline").read_bytes().split(b"\0")[0].decode() for d in daemons}
        assert programs == {f"{path}/registry"}
        assert all(line.split(":", 1)[1].startswith("$2b$05$")
                   for line in (state / "registries" / "dest" / "htpasswd").read_text().splitlines())

        env = {**os.environ, **world.env(), "PATH": path}

        def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*enter, *argv], env=env, capture_output=True, text=True, timeout=180)

        info = run(["podman", "info", "--format", "json"])
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["host"]["ociRuntime"]["path"] == f"{path}/crun"
        container = run(["podman", "run", "--rm", f"{world.source_registry}/fedora:40", "cat", "/etc/fedora-release"])
        assert container.returncode == 0 and container.stdout == "Fedora release 40\n", container.stderr
        # dockerd runs crun too (and starts although its BuildKit wants a binary named runc).
        docker_runtime = run(["docker", "info", "--format", "{{.DefaultRuntime}}"])
        assert docker_runtime.stdout.strip() == "crun", docker_runtime.stderr
        moved = run(["skopeo", "copy", "-q", f"docker://{world.source_registry}/fedora:40",
                     f"docker-daemon:{world.source_registry}/fedora:40", "--dest-daemon-host", env["DOCKER_HOST"]])
        assert moved.returncode == 0, moved.stderr
        assert f"{world.source_registry}/fedora" in run(["docker", "images"]).stdout
        # The bcrypt entries are what the registry checks: the generated credentials push, a wrong password is refused.
        creds = world.creds_file.read_text().strip()
        pushed = run(["skopeo", "copy", "-q", f"docker://{world.source_registry}/fedora:40",
                      f"docker://{world.dest_registry}/student/fedora:40", "--dest-creds", creds])
        assert pushed.returncode == 0, pushed.stderr
        refused = run(["skopeo", "inspect", f"docker://{world.dest_registry}/student/fedora:40",
                       "--creds", creds.split(":", 1)[0] + ":wrong"])
        assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower()
    finally:
        down = labcheck("lab", "--state-dir", str(state), "down", "--purge", path=path, prefix=enter)
        assert down.returncode == 0, down.stderr
