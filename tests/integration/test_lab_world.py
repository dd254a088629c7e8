"""The offline lab world, exercised with the real skopeo, podman and docker."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.labenv.world import LabWorld

pytestmark = pytest.mark.lab


def test_skopeo_inspect_of_the_seed_shows_the_labs_fields(lab_world: LabWorld, in_world) -> None:
    out = in_world(["skopeo", "inspect", f"docker://{lab_world.source_registry}/fedora"]).stdout
    info = json.loads(out)
    assert info["Name"] == f"{lab_world.source_registry}/fedora"
    assert info["Labels"] == {"license": "MIT", "name": "fedora", "vendor": "Fedora Project", "version": "38"}
    assert info["Env"][:3] == ["DISTTAG=f38container", "FGC=f38", "container=oci"]
    assert any(entry.startswith("PATH=") for entry in info["Env"])
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")
    assert sorted(info["RepoTags"]) == ["38", "39", "40", "latest"]
    assert len(info["Layers"]) == 1


def test_latest_is_a_multi_arch_list_with_real_images(lab_world: LabWorld, in_world) -> None:
    ref = f"docker://{lab_world.source_registry}/fedora:latest"
    raw = json.loads(in_world(["skopeo", "inspect", "--raw", ref]).stdout)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert sorted(m["platform"]["architecture"] for m in raw["manifests"]) == ["amd64", "arm64"]
    arm = json.loads(in_world(["skopeo", "--override-arch", "arm64", "inspect", ref]).stdout)
    assert arm["Architecture"] == "arm64"
    assert arm["Labels"]["version"] == "38"


def test_tags_39_and_40_are_their_own_versions(lab_world: LabWorld, in_world) -> None:
    for version in ("39", "40"):
        info = json.loads(in_world(["skopeo", "inspect", f"docker://{lab_world.source_registry}/fedora:{version}"]).stdout)
        assert info["Labels"]["version"] == version
        assert f"FGC=f{version}" in info["Env"]


def test_skopeo_copy_into_a_directory(lab_world: LabWorld, in_world, tmp_path: Path) -> None:
    target = tmp_path / "fedora-skopeo"
    in_world(["skopeo", "copy", f"docker://{lab_world.source_registry}/fedora", f"dir:{target}"])
    names = sorted(p.name for p in target.iterdir())
    assert "manifest.json" in names and "version" in names
    assert (target / "version").read_text() == "Directory Transport Version: 1.1\n"
    manifest = json.loads((target / "manifest.json").read_text())
    for blob in [manifest["config"], *manifest["layers"]]:
        assert (target / blob["digest"].split(":")[1]).stat().st_size == blob["size"]


def test_podman_run_and_the_podman_to_docker_move(lab_world: LabWorld, in_world) -> None:
    source = f"{lab_world.source_registry}/fedora"
    in_world(["skopeo", "copy", f"docker://{source}", "containers-storage:fedora"])
    images = in_world(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split()
    assert "docker.io/library/fedora:latest" in images

    in_world(["podman", "rm", "-f", "meta-data-container"], check=False)
    in_world(["podman", "run", "--name", "meta-data-container", "-id", source, "bash"])
    state = json.loads(in_world(["podman", "inspect", "meta-data-container"]).stdout)[0]
    assert state["State"]["Running"] is True
    assert state["Config"]["Labels"]["vendor"] == "Fedora Project"
    release = in_world(["podman", "exec", "meta-data-container", "cat", "/etc/os-release"]).stdout
    assert "VERSION_ID=38" in release

    in_world(["skopeo", "copy", "--dest-daemon-host", f"unix://{lab_world.docker_socket}",
              f"containers-storage:{source}", f"docker-daemon:{source}:latest"])
    listed = in_world(["docker", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]).stdout
    podman_id = in_world(["podman", "image", "inspect", "--format", "{{.Id}}", source]).stdout.strip()
    assert f"{source}:latest sha256:{podman_id}" in listed.splitlines()


def test_destination_registry_needs_the_generated_credentials(lab_world: LabWorld, in_world) -> None:
    src = f"docker://{lab_world.source_registry}/fedora:38"
    dst = f"docker://{lab_world.dest_registry}/fedora"
    refused = in_world(["skopeo", "copy", src, dst], check=False)
    assert refused.returncode != 0
    assert "unauthorized" in refused.stderr or "authentication required" in refused.stderr
    creds = Path(lab_world.env()["LABCHECK_DEST_CREDS_FILE"]).read_text().strip()
    # The password goes through an auth file, not the command line.
    auth = Path(lab_world.state_dir) / "test-auth.json"
    import base64
    auth.write_text(json.dumps({"auths": {lab_world.dest_registry: {"auth": base64.b64encode(creds.encode()).decode()}}}))
    in_world(["skopeo", "copy", "--dest-authfile", str(auth), src, dst])
    info = json.loads(in_world(["skopeo", "inspect", "--authfile", str(auth), dst]).stdout)
    assert info["Labels"]["version"] == "38"


def test_credentials_file_is_private_and_never_printed(lab_world: LabWorld) -> None:
    creds_file = Path(lab_world.env()["LABCHECK_DEST_CREDS_FILE"])
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    password = creds_file.read_text().split(":", 1)[1]
    assert len(password) >= 32
    result = subprocess.run([sys.executable, "-m", "labcheck.cli", "lab", "--state-dir", str(lab_world.state_dir), "env"],
                            capture_output=True, text=True, check=True)
    assert "LABCHECK_DEST_CREDS_FILE" in result.stdout
    assert password not in result.stdout + result.stderr
    status = subprocess.run([sys.executable, "-m", "labcheck.cli", "lab", "--state-dir", str(lab_world.state_dir), "status"],
                            capture_output=True, text=True)
    assert status.returncode == 0, status.stdout + status.stderr
    assert password not in status.stdout + status.stderr


def test_env_names_every_variable_scripts_rely_on(lab_world: LabWorld) -> None:
    env = lab_world.env()
    for name in ("LABCHECK_SOURCE_REGISTRY", "LABCHECK_DEST_REGISTRY", "LABCHECK_DEST_CREDS_FILE", "DOCKER_HOST",
                 "SSL_CERT_FILE", "CONTAINERS_CONF", "CONTAINERS_REGISTRIES_CONF", "CONTAINERS_STORAGE_CONF"):
        assert env[name]
    assert "BEGIN CERTIFICATE" in Path(env["SSL_CERT_FILE"]).read_text()
    assert str(lab_world.state_dir) in env["CONTAINERS_STORAGE_CONF"]


def test_eval_of_env_makes_plain_commands_work(lab_world: LabWorld) -> None:
    script = (
        f'eval "$({sys.executable} -m labcheck.cli lab --state-dir {lab_world.state_dir} env)" && '
        'skopeo inspect --format "{{.Os}}" docker://$LABCHECK_SOURCE_REGISTRY/fedora && '
        'docker version --format "{{.Server.Version}}" && podman info --format "{{.Store.GraphRoot}}"'
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONTAINERS_", "DOCKER_", "LABCHECK_"))}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=clean)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "linux"
    assert lines[-1].startswith(str(lab_world.state_dir))


def test_second_up_reuses_what_runs(lab_world: LabWorld) -> None:
    before = (lab_world.source.pid(), lab_world.dest.pid(), lab_world.dockerd.pid())
    LabWorld(lab_world.state_dir).up()
    after = (lab_world.source.pid(), lab_world.dest.pid(), lab_world.dockerd.pid())
    assert None not in before
    assert before == after
