"""The native engine and the skopeo driver give the same results for the same inspect and copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import testinfra

from labcheck.engine.api import NativeDriver
from labcheck.engine.base.options import SideOptions
from labcheck.engine.skopeo_driver import SkopeoDriver
from labcheck.environ import scoped_environ
from labcheck.labenv.world import LabWorld

pytestmark = pytest.mark.lab


class RecordingHost:
    """The real local testinfra host, remembering every command line it ran."""

    def __init__(self) -> None:
        self.host = testinfra.get_host("local://")
        self.backend = self.host.backend
        self.lines: list[str] = []

    def run(self, command: str, *args: str):
        self.lines.append(command)
        return self.host.run(command, *args)


@pytest.fixture
def drivers(lab_world: LabWorld):
    recorder = RecordingHost()
    return {"native": NativeDriver(), "skopeo": SkopeoDriver(recorder, env=lab_world.env())}, recorder


@pytest.mark.parametrize("tag", ["latest", "38"])
def test_inspect_is_the_same_from_both_drivers(lab_world: LabWorld, drivers, tag: str) -> None:
    engines, _ = drivers
    ref = f"docker://{lab_world.source_registry}/fedora:{tag}"
    with scoped_environ(lab_world.env()):
        native = engines["native"].inspect(ref).to_json()
    assert native == engines["skopeo"].inspect(ref).to_json()
    assert native["Labels"]["vendor"] == "Fedora Project"


def test_copy_to_dir_is_the_same_from_both_drivers(lab_world: LabWorld, drivers, tmp_path: Path) -> None:
    engines, _ = drivers
    src = f"docker://{lab_world.source_registry}/fedora"
    results = {}
    for name, engine in engines.items():
        with scoped_environ(lab_world.env()):
            results[name] = engine.copy(src, f"dir:{tmp_path / name}")
    assert results["native"].manifest_digest == results["skopeo"].manifest_digest
    assert results["native"].manifest == results["skopeo"].manifest
    native_files = {p.name: p.read_bytes() for p in (tmp_path / "native").iterdir()}
    skopeo_files = {p.name: p.read_bytes() for p in (tmp_path / "skopeo").iterdir()}
    assert native_files == skopeo_files
    with scoped_environ(lab_world.env()):
        assert engines["native"].inspect(f"dir:{tmp_path / 'skopeo'}").to_json() == \
            engines["skopeo"].inspect(f"dir:{tmp_path / 'native'}").to_json()


def test_push_with_credentials_never_puts_them_on_a_command_line(lab_world: LabWorld, drivers) -> None:
    engines, recorder = drivers
    creds = lab_world.dest_credentials()
    src = f"docker://{lab_world.source_registry}/fedora:40"
    digests = {}
    for name, engine in engines.items():
        dst = f"docker://{lab_world.dest_registry}/drivers/{name}:40"
        with scoped_environ(lab_world.env()):
            digests[name] = engine.copy(src, dst, dst_options=SideOptions(creds=creds)).manifest_digest
            assert engine.inspect(dst, options=SideOptions(creds=creds)).digest == digests[name]
    assert digests["native"] == digests["skopeo"]
    assert recorder.lines and not any(creds.password in line for line in recorder.lines)
    assert any("--dest-authfile" in line for line in recorder.lines)
    # the temporary auth files are gone
    assert not any(os.path.exists(line.split("--dest-authfile ")[1].split()[0])
                   for line in recorder.lines if "--dest-authfile " in line)


def test_skopeo_errors_are_one_line_labcheck_errors(lab_world: LabWorld, drivers) -> None:
    engines, _ = drivers
    from labcheck.errors import LabcheckError
    with pytest.raises(LabcheckError) as info:
        engines["skopeo"].inspect(f"docker://{lab_world.source_registry}/nothing-here:1")
    assert "\n" not in str(info.value)


def test_native_steps_take_the_lab_environment_as_options_not_os_environ(lab_world: LabWorld) -> None:
    """registry → containers-storage → docker-daemon with the native step driver, while this thread
    holds the lock of os.environ: a step that set os.environ would wait for it (and time out here).
    podman and docker then find the image in the lab's own store and daemon."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    from labcheck import environ
    from labcheck.runner.drivers import make_driver

    env = lab_world.env()
    assert all(os.environ.get(key) != env[key] for key in ("CONTAINERS_STORAGE_CONF", "SSL_CERT_FILE"))
    driver = make_driver("native", None, env)
    name = f"localhost/labcheck-options-{os.getpid()}:latest"
    tools_env = {**os.environ, **env}
    with ThreadPoolExecutor(1) as pool:
        environ._LOCK.acquire()
        try:
            moving = pool.submit(lambda: [
                driver.copy(f"docker://{lab_world.source_registry}/fedora:40", f"containers-storage:{name}"),
                driver.copy(f"containers-storage:{name}", f"docker-daemon:{name}"),
            ])
            moved = moving.result(timeout=120)  # a step waiting for os.environ's lock times out here
        finally:
            environ._LOCK.release()  # and then finishes, so the pool can close
    try:
        podman = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", name], env=tools_env,
                                capture_output=True, text=True)
        docker = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", name], env=tools_env,
                                capture_output=True, text=True)
        assert podman.returncode == 0 and docker.returncode == 0, podman.stderr + docker.stderr
        assert docker.stdout.strip() == f"sha256:{podman.stdout.strip()}"  # the same image (config) in both
        assert all(digest.startswith("sha256:") for digest in moved)
    finally:
        subprocess.run(["podman", "rmi", "-f", name], env=tools_env, capture_output=True)
        subprocess.run(["docker", "rmi", "-f", name], env=tools_env, capture_output=True)
