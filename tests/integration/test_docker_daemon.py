"""docker-daemon: against the lab world's dockerd 20.10 and the real skopeo 1.9."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.engine.copy import copy_between, copy_image
from labcheck.engine.transports.dockersave.engine_api import DaemonError, DockerEngine
from labcheck.engine.base.errors import DigestMismatchError, ImageNotFoundError
from labcheck.engine.base.options import CopyOptions, SideOptions
from labcheck.engine.reference.parse import parse_image_reference as ref
from labcheck.engine.archive.tarwriter import TarWriter
from labcheck.engine.transports import dir as dir_transport
from labcheck.engine.transports.dockersave import daemon as docker_daemon
from labcheck.errors import LabcheckError
from labcheck.labenv.world import LabWorld
from tests.imagebuild import write_dir_image

pytestmark = [pytest.mark.lab, pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs the real skopeo")]


@pytest.fixture
def world_env(lab_world: LabWorld, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The lab world's environment (DOCKER_HOST included), for in-process engine calls too."""
    env = lab_world.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}


def run(env: dict[str, str], *argv: str) -> bytes:
    proc = subprocess.run(list(argv), capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def skopeo(env: dict[str, str], *args: str) -> bytes:
    return run(env, "skopeo", "--insecure-policy", *args)


def labcheck(env: dict[str, str], *args: str) -> bytes:
    return run(env, sys.executable, "-m", "labcheck.cli", *args)


def docker_image_id(env: dict[str, str], name: str) -> str:
    return run(env, "docker", "image", "inspect", "--format", "{{.Id}}", name).decode().strip()


def test_registry_to_daemon_keeps_the_image_id(lab_world: LabWorld, world_env) -> None:
    src = f"docker://{lab_world.source_registry}/fedora:38"
    copy_image(ref(src), ref("docker-daemon:labcheck-daemon/fedora:38"))
    config_digest = json.loads(skopeo(world_env, "inspect", "--raw", src))["config"]["digest"]
    listed = run(world_env, "docker", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").decode()
    assert f"labcheck-daemon/fedora:38 {config_digest}" in listed.splitlines()


def test_daemon_host_option_wins_over_a_missing_docker_host(lab_world: LabWorld, world_env,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    opts = SideOptions(daemon_host=f"unix://{lab_world.docker_socket}")
    copy_image(ref(f"docker://{lab_world.source_registry}/fedora:latest"), ref("docker-daemon:labcheck-daemon/fedora:latest"),
               dst_options=opts)
    arch = run(world_env, "docker", "image", "inspect", "--format", "{{.Architecture}}", "labcheck-daemon/fedora:latest")
    assert arch.decode().strip() == "amd64"
    with pytest.raises(DaemonError, match="Cannot connect to the Docker daemon"):
        copy_image(ref("docker-daemon:labcheck-daemon/fedora:latest"), ref("dir:/nonexistent-parent/x"))


def test_inspect_equals_skopeo(lab_world: LabWorld, world_env) -> None:
    copy_image(ref(f"docker://{lab_world.source_registry}/fedora:39"), ref("docker-daemon:labcheck-daemon/fedora:39"))
    host = f"unix://{lab_world.docker_socket}"
    image_id = docker_image_id(world_env, "labcheck-daemon/fedora:39")
    for name in ("docker-daemon:labcheck-daemon/fedora:39", f"docker-daemon:{image_id}"):
        assert labcheck(world_env, "inspect", name) == skopeo(world_env, "inspect", "--daemon-host", host, name)
        assert labcheck(world_env, "inspect", "--raw", name) == skopeo(world_env, "inspect", "--raw", "--daemon-host", host, name)
        assert labcheck(world_env, "inspect", "--config", "--raw", name) == skopeo(
            world_env, "inspect", "--config", "--raw", "--daemon-host", host, name)


def test_daemon_to_archive_is_byte_identical_to_skopeos(lab_world: LabWorld, world_env, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=4, layer_size=150_000, seed="daemon-to-archive")
    copy_image(ref(f"dir:{image.path}"), ref("docker-daemon:labcheck-daemon/layers:4"))
    host = f"unix://{lab_world.docker_socket}"
    skopeo(world_env, "copy", "--src-daemon-host", host, "docker-daemon:labcheck-daemon/layers:4",
           f"docker-archive:{tmp_path}/skopeo.tar:labcheck-daemon/layers:4")
    copy_image(ref("docker-daemon:labcheck-daemon/layers:4"),
               ref(f"docker-archive:{tmp_path}/labcheck.tar:labcheck-daemon/layers:4"),
               options=CopyOptions(image_parallel_copies=1))
    assert (tmp_path / "labcheck.tar").read_bytes() == (tmp_path / "skopeo.tar").read_bytes()
    assert docker_image_id(world_env, "labcheck-daemon/layers:4") == image.config_digest


def test_skopeo_archive_into_daemon_and_back_to_dir(lab_world: LabWorld, world_env, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=2, seed="archive-to-daemon")
    skopeo(world_env, "copy", f"dir:{image.path}", f"docker-archive:{tmp_path}/s.tar:localhost/x:1")
    copy_image(ref(f"docker-archive:{tmp_path}/s.tar"), ref("docker-daemon:labcheck-daemon/from-archive:1"))
    copy_image(ref("docker-daemon:labcheck-daemon/from-archive:1"), ref(f"dir:{tmp_path}/back"))
    host = f"unix://{lab_world.docker_socket}"
    assert (tmp_path / "back" / "manifest.json").read_bytes() == skopeo(
        world_env, "inspect", "--raw", "--daemon-host", host, "docker-daemon:labcheck-daemon/from-archive:1")
    assert (tmp_path / "back" / image.config_digest[7:]).read_bytes() == (image.path / image.config_digest[7:]).read_bytes()


def test_skopeo_copies_labchecks_daemon_image_to_a_registry(lab_world: LabWorld, world_env, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=2, seed="daemon-to-registry")
    copy_image(ref(f"dir:{image.path}"), ref("docker-daemon:labcheck-daemon/push:1"))
    creds = lab_world.dest_credentials()
    pushed = f"docker://{lab_world.dest_registry}/labcheck/daemon-push:1"
    copy_image(ref("docker-daemon:labcheck-daemon/push:1"), ref(pushed), dst_options=SideOptions(creds=creds))
    copy_image(ref(pushed), ref("docker-daemon:labcheck-daemon/pulled-back:1"), src_options=SideOptions(creds=creds))
    assert docker_image_id(world_env, "labcheck-daemon/pulled-back:1") == image.config_digest


def test_layers_stream_from_the_daemon(world_env, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=8, layer_size=400_000, seed="streaming")
    copy_image(ref(f"dir:{image.path}"), ref("docker-daemon:labcheck-daemon/streaming:8"))
    for workers in (1, 8):
        target = tmp_path / f"out-{workers}"
        source = docker_daemon.TRANSPORT.open_source(ref("docker-daemon:labcheck-daemon/streaming:8"))
        destination = dir_transport.TRANSPORT.open_destination(ref(f"dir:{target}"))
        try:
            copy_between(source, destination, options=CopyOptions(image_parallel_copies=workers))
        finally:
            destination.close()
            source.close()
        layers = source.layers
        total = sum(layer.size for layer in source.image.layers)
        # Layers asked for before the stream reaches them never touch the disk.
        assert layers.direct_members >= 1
        assert layers.spooled_bytes < total
        manifest = json.loads((target / "manifest.json").read_bytes())
        assert len(manifest["layers"]) == 8


def test_missing_images_and_bad_destinations(world_env) -> None:
    with pytest.raises(ImageNotFoundError, match="No such image"):
        docker_daemon.TRANSPORT.open_source(ref("docker-daemon:labcheck-daemon/nope:1"))
    with pytest.raises(LabcheckError, match="a destination must be a name:tag"):
        docker_daemon.TRANSPORT.open_destination(ref("docker-daemon:sha256:" + "a" * 64))


def test_failed_copy_loads_nothing(world_env, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=3, seed="broken")
    manifest = json.loads((image.path / "manifest.json").read_bytes())
    blob = image.path / manifest["layers"][1]["digest"][7:]
    blob.write_bytes(blob.read_bytes()[:-5] + b"xxxxx")
    with pytest.raises((DigestMismatchError, LabcheckError)):
        copy_image(ref(f"dir:{image.path}"), ref("docker-daemon:labcheck-daemon/broken:1"))
    assert run(world_env, "docker", "images", "-q", "labcheck-daemon/broken").strip() == b""


def test_daemon_errors_in_the_json_stream_are_raised(lab_world: LabWorld) -> None:
    engine = DockerEngine(f"unix://{lab_world.docker_socket}")
    assert engine.api_version() == "1.41"
    upload = engine.load_image()
    tar = TarWriter(upload)
    tar.add_bytes("manifest.json", json.dumps([{"Config": "missing.json", "RepoTags": ["x:1"], "Layers": []}]).encode())
    tar.close()
    with pytest.raises(DaemonError, match="missing.json"):
        upload.finish()


def test_labcheck_copy_cli_with_daemon_host(lab_world: LabWorld, world_env, tmp_path: Path) -> None:
    env = {k: v for k, v in world_env.items() if k != "DOCKER_HOST"}
    host = f"unix://{lab_world.docker_socket}"
    labcheck(env, "copy", "--dest-daemon-host", host, f"docker://{lab_world.source_registry}/fedora:40",
             "docker-daemon:labcheck-daemon/cli:40")
    labcheck(env, "copy", "--src-daemon-host", host, "docker-daemon:labcheck-daemon/cli:40", f"dir:{tmp_path}/cli")
    assert json.loads((tmp_path / "cli" / "manifest.json").read_bytes())["layers"][0]["mediaType"].endswith("tar.gzip")


def test_layers_of_unknown_size_are_spooled_then_loaded(world_env, tmp_path: Path) -> None:
    from labcheck.engine.base.interfaces import BlobInfo

    image = write_dir_image(tmp_path / "src", layers=2, seed="unsized")
    manifest = json.loads(image.manifest)
    destination = docker_daemon.TRANSPORT.open_destination(ref("docker-daemon:labcheck-daemon/unsized:1"))
    try:
        for layer in manifest["layers"]:
            with open(image.path / layer["digest"][7:], "rb") as blob:
                stored = destination.put_blob(blob, BlobInfo(layer["digest"], -1, layer["mediaType"]))
            assert stored.size == layer["size"]
        config = manifest["config"]
        with open(image.path / config["digest"][7:], "rb") as blob:
            destination.put_blob(blob, BlobInfo(config["digest"], config["size"], config["mediaType"]))
        destination.put_manifest(image.manifest, manifest["mediaType"])
        destination.commit()
    finally:
        destination.close()
    assert any("Loaded image: labcheck-daemon/unsized:1" in m for m in destination.messages)
    assert docker_image_id(world_env, "labcheck-daemon/unsized:1") == image.config_digest
