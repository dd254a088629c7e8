"""labcheck.labenv.tools: tools found by what they are; the cgroup manager from the machine's own facts."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest

from labcheck.labenv import components, tools, userenv


def test_cgroup_manager_is_systemd_only_with_systemd_on_the_unified_hierarchy(tmp_path: Path) -> None:
    def machine(name: str, *, systemd: bool, unified: bool) -> Path:
        root = tmp_path / name
        (root / "sys/fs/cgroup").mkdir(parents=True)
        if systemd:
            (root / "run/systemd/system").mkdir(parents=True)
        if unified:
            (root / "sys/fs/cgroup/cgroup.controllers").write_text("cpuset cpu io memory pids\n")
        return root

    assert tools.cgroup_manager(machine("fedora", systemd=True, unified=True)) == "systemd"
    assert tools.cgroup_manager(machine("hybrid", systemd=True, unified=False)) == "cgroupfs"
    assert tools.cgroup_manager(machine("container", systemd=False, unified=True)) == "cgroupfs"
    assert tools.cgroup_manager(machine("old", systemd=False, unified=False)) == "cgroupfs"


def test_static_busybox_is_told_from_a_dynamic_program(tmp_path: Path) -> None:
    assert tools.is_static_elf(Path("/bin/busybox"))  # busybox-static
    assert not tools.is_static_elf(Path("/usr/bin/docker-registry"))  # has an ELF interpreter
    script = tmp_path / "busybox"
    script.write_text("#!/bin/sh\n")
    assert not tools.is_static_elf(script)
    assert not tools.is_static_elf(tmp_path / "absent")


def test_a_tool_is_found_by_any_of_its_names_then_in_its_places(tmp_path: Path) -> None:
    (tmp_path / "registry").symlink_to("/usr/bin/docker-registry")
    assert tools.find(tools.REGISTRY, path=str(tmp_path)) == tmp_path / "registry"
    assert tools.find(tools.REGISTRY, path=str(tmp_path / "empty")) is None
    elsewhere = tools.Tool("busybox", ("busybox",), apt="busybox-static", dnf="busybox",
                           places=(str(tmp_path / "none"), "/usr/bin/busybox"))
    assert tools.find(elsewhere, path=str(tmp_path)) == Path("/usr/bin/busybox")


def test_everything_missing_is_one_message_with_apt_and_dnf_packages(tmp_path: Path) -> None:
    with pytest.raises(tools.MissingToolError) as caught:
        tools.lab_tools(path=str(tmp_path))
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    for package in ("apt install docker-registry / dnf install docker-distribution",
                    "apt install docker.io / dnf install moby-engine", "apt install podman / dnf install podman",
                    "apt install runc / dnf install crun"):
        assert package in message


def test_htpasswd_entries_are_bcrypt_without_the_htpasswd_binary() -> None:
    entry = components.htpasswd_entry("student+fedora", "S3CRET")
    user, hashed = entry.split(":", 1)
    assert user == "student+fedora" and hashed.startswith("$2b$05$")
    assert bcrypt.checkpw(b"S3CRET", hashed.encode()) and not bcrypt.checkpw(b"other", hashed.encode())


def test_podman_config_names_the_runtime_found_and_the_rootless_one_keeps_it(tmp_path: Path) -> None:
    runtime = tools.OciRuntime("crun", Path("/opt/bin/crun"))
    paths = components.write_podman_config(tmp_path, runtime=runtime, cgroup_manager="systemd")
    conf = paths["CONTAINERS_CONF"].read_text()
    assert 'runtime = "crun"' in conf and 'cgroup_manager = "systemd"' in conf
    assert '[engine.runtimes]\ncrun = ["/opt/bin/crun"]' in conf
    rootless = userenv.write_rootless_conf(paths["CONTAINERS_CONF"]).read_text()
    assert 'crun = ["/opt/bin/crun"]' in rootless and "events_logfile_path" not in rootless


def test_dockerd_gets_a_runtime_other_than_runc_as_its_default(tmp_path: Path) -> None:
    crun = tools.OciRuntime("crun", Path("/usr/bin/crun"))
    argv = components.dockerd_argv(tmp_path, tmp_path, ["/s.sock"], tmp_path / "pid", crun)
    assert "--add-runtime=crun=/usr/bin/crun" in argv and "--default-runtime=crun" in argv
    runc = tools.OciRuntime("runc", Path("/usr/sbin/runc"))
    assert not any(arg.startswith(("--add-runtime", "--default-runtime"))
                   for arg in components.dockerd_argv(tmp_path, tmp_path, ["/s.sock"], tmp_path / "pid", runc))
    # Without runc on PATH, dockerd's BuildKit gets crun under runc's name; with it, nothing.
    stand_in = tools.runc_stand_in(crun, tmp_path / "bin", path=str(tmp_path / "nothing"))
    assert stand_in is not None and (stand_in / "runc").resolve() == Path("/usr/bin/crun").resolve()
    assert tools.runc_stand_in(crun, tmp_path / "bin2", path="/usr/sbin") is None
