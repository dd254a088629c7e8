"""Engine options from an environment mapping: which variables become options, and when os.environ is needed."""

from __future__ import annotations

import os
from pathlib import Path

from labcheck.engine.base.environment import options_with_environment
from labcheck.engine.base.options import SideOptions
from labcheck.environ import options_or_environ


def lab_env(tmp_path: Path) -> dict[str, str]:
    for name in ("bundle.crt", "registries.conf", "containers.conf", "storage.conf"):
        (tmp_path / name).write_text("")
    return {"SSL_CERT_FILE": str(tmp_path / "bundle.crt"), "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "registries.conf"),
            "DOCKER_HOST": "unix:///run/lab/docker.sock", "CONTAINERS_CONF": str(tmp_path / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(tmp_path / "storage.conf")}


def test_the_lab_environment_becomes_options_and_the_tools_environment(tmp_path: Path) -> None:
    env = lab_env(tmp_path)
    options = options_with_environment(SideOptions(), env)
    assert options is not None
    assert (options.ca_file, options.registries_conf, options.daemon_host) == (
        env["SSL_CERT_FILE"], env["CONTAINERS_REGISTRIES_CONF"], "unix:///run/lab/docker.sock")
    assert options.tool_env == env  # podman reads CONTAINERS_CONF and CONTAINERS_STORAGE_CONF itself


def test_an_explicit_option_wins_over_the_environment(tmp_path: Path) -> None:
    options = options_with_environment(SideOptions(daemon_host="unix:///mine.sock", ca_file="/my/ca.crt"),
                                       lab_env(tmp_path))
    assert options is not None and options.daemon_host == "unix:///mine.sock" and options.ca_file == "/my/ca.crt"


def test_what_only_os_environ_can_carry_is_left_to_it(tmp_path: Path) -> None:
    env = lab_env(tmp_path)
    assert options_with_environment(SideOptions(), {**env, "XDG_RUNTIME_DIR": "/run/user/1000"}) is None
    # A variable naming a missing file is skipped by the engine; as an option it would be an error.
    assert options_with_environment(SideOptions(), {**env, "SSL_CERT_FILE": str(tmp_path / "gone.crt")}) is None


def test_options_or_environ_leaves_labchecks_own_variables_out(tmp_path: Path) -> None:
    env = {**lab_env(tmp_path), "LABCHECK_SOURCE_REGISTRY": "127.0.0.1:5000"}
    options, scope = options_or_environ(SideOptions(), env)
    assert options.tool_env is not None and "LABCHECK_SOURCE_REGISTRY" not in options.tool_env
    before = dict(os.environ)
    with scope:  # nothing to set: the environment went into the options
        assert dict(os.environ) == before
    options, scope = options_or_environ(SideOptions(), {**env, "HOME": "/home/student"})
    assert options.tool_env is None  # left as given; os.environ carries env for the call
    with scope:
        assert os.environ["HOME"] == "/home/student"
    assert dict(os.environ) == before
