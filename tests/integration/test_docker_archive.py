"""docker-archive: against the real skopeo 1.9 and docker 20.10: identical archives, identical inspect output, safe failures."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.engine.copy import copy_image
from labcheck.engine.base.errors import DigestMismatchError, ImageNotFoundError
from labcheck.engine.base.options import CopyOptions, SideOptions
from labcheck.engine.reference.parse import parse_image_reference as ref
from labcheck.engine.transports.dockersave import archive as docker_archive
from labcheck.errors import LabcheckError
from labcheck.labenv.world import LabWorld
from tests.imagebuild import write_dir_image

pytestmark = [pytest.mark.lab, pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs the real skopeo")]
SERIAL = CopyOptions(image_parallel_copies=1)  # skopeo writes archive layers one by one, in manifest order


@pytest.fixture
def world_env(lab_world: LabWorld, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The lab world's environment, for in-process engine calls too."""
    env = lab_world.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}


def skopeo(env: dict[str, str], *args: str) -> bytes:
    proc = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def labcheck(env: dict[str, str], *args: str) -> bytes:
    proc = subprocess.run([sys.executable, "-m", "labcheck.cli", *args], capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def raw_manifest(reference: str) -> bytes:
    source = docker_archive.TRANSPORT.open_source(ref(reference))
    try:
        return source.get_manifest()[0]
    finally:
        source.close()


def test_registry_to_archive_is_byte_identical_to_skopeos(lab_world: LabWorld, world_env, tmp_path: Path) -> None:
    src = f"docker://{lab_world.source_registry}/fedora:38"
    skopeo(world_env, "copy", src, f"docker-archive:{tmp_path}/skopeo.tar:fedora:38")
    copy_image(ref(src), ref(f"docker-archive:{tmp_path}/labcheck.tar:fedora:38"))
    assert (tmp_path / "labcheck.tar").read_bytes() == (tmp_path / "skopeo.tar").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labcheck.tar", "skopeo.tar"]  # no temp file left


def test_multi_layer_gzip_image_from_dir_is_byte_identical(world_env, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=3, layer_size=200_000)
    skopeo(world_env, "copy", f"dir:{image.path}", f"docker-archive:{tmp_path}/skopeo.tar:example.com/a/b:1")
    copy_image(ref(f"dir:{image.path}"), ref(f"docker-archive:{tmp_path}/labcheck.tar:example.com/a/b:1"),
               options=SERIAL)
    assert (tmp_path / "labcheck.tar").read_bytes() == (tmp_path / "skopeo.tar").read_bytes()


def test_default_parallelism_still_writes_skopeos_bytes(world_env, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=5, layer_size=300_000)
    skopeo(world_env, "copy", f"dir:{image.path}", f"docker-archive:{tmp_path}/skopeo.tar:example.com/a/b:1")
    copy_image(ref(f"dir:{image.path}"), ref(f"docker-archive:{tmp_path}/labcheck.tar:example.com/a/b:1"))
    assert (tmp_path / "labcheck.tar").read_bytes() == (tmp_path / "skopeo.tar").read_bytes()


def test_parallel_copy_writes_the_same_members(world_env, tmp_path: Path) -> None:
    import tarfile

    image = write_dir_image(tmp_path / "src", layers=5, layer_size=100_000)
    skopeo(world_env, "copy", f"dir:{image.path}", f"docker-archive:{tmp_path}/skopeo.tar")
    copy_image(ref(f"dir:{image.path}"), ref(f"docker-archive:{tmp_path}/labcheck.tar"))

    def contents(path: Path) -> dict[str, bytes]:
        with tarfile.open(path) as tar:
            return {m.name: (tar.extractfile(m).read() if m.isfile() else m.linkname.encode()) for m in tar}  # type: ignore[union-attr]

    assert contents(tmp_path / "labcheck.tar") == contents(tmp_path / "skopeo.tar")


def test_labcheck_reads_skopeos_archive_like_skopeo(lab_world: LabWorld, world_env, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=2)
    archive = f"docker-archive:{tmp_path}/skopeo.tar:localhost/x:2"
    skopeo(world_env, "copy", f"dir:{image.path}", archive)
    assert raw_manifest(archive) == skopeo(world_env, "inspect", "--raw", archive)
    assert labcheck(world_env, "inspect", archive) == skopeo(world_env, "inspect", archive)
    assert labcheck(world_env, "inspect", "--config", "--raw", archive) == skopeo(world_env, "inspect", "--config", "--raw", archive)


def test_skopeo_reads_labchecks_archive(world_env, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=2)
    archive = f"docker-archive:{tmp_path}/labcheck.tar:localhost/x:2"
    copy_image(ref(f"dir:{image.path}"), ref(archive))
    assert labcheck(world_env, "inspect", archive) == skopeo(world_env, "inspect", archive)
    skopeo(world_env, "copy", archive, f"dir:{tmp_path}/back")
    back = json.loads((tmp_path / "back" / "manifest.json").read_bytes())
    assert back["config"]["digest"] == image.config_digest


def test_round_trip_through_oci_and_dir(world_env, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=2)
    first = f"docker-archive:{tmp_path}/first.tar:localhost/x:1"
    copy_image(ref(f"dir:{image.path}"), ref(first), options=SERIAL)
    copy_image(ref(first), ref(f"oci:{tmp_path}/layout:one"))
    copy_image(ref(f"oci:{tmp_path}/layout:one"), ref(f"dir:{tmp_path}/plain"))
    copy_image(ref(f"dir:{tmp_path}/plain"), ref(f"docker-archive:{tmp_path}/second.tar:localhost/x:1"), options=SERIAL)
    # oci: converts the config to OCI's, so the image ID changes; the layers (by diffID) do not.
    first_layers = json.loads(raw_manifest(first))["layers"]
    assert json.loads(raw_manifest(f"docker-archive:{tmp_path}/second.tar"))["layers"] == first_layers
    assert json.loads(skopeo(world_env, "inspect", f"oci:{tmp_path}/layout:one"))["Layers"] == [
        layer["digest"] for layer in first_layers]


def test_archive_to_registry_and_back(lab_world: LabWorld, world_env, tmp_path: Path) -> None:
    creds = lab_world.dest_credentials()
    image = write_dir_image(tmp_path / "src", layers=2, seed="registry-round-trip")
    archive = f"docker-archive:{tmp_path}/a.tar:localhost/x:1"
    copy_image(ref(f"dir:{image.path}"), ref(archive))
    pushed = f"docker://{lab_world.dest_registry}/labcheck/archive-test:1"
    copy_image(ref(archive), ref(pushed), dst_options=SideOptions(creds=creds))
    copy_image(ref(pushed), ref(f"docker-archive:{tmp_path}/b.tar"), src_options=SideOptions(creds=creds))
    assert raw_manifest(f"docker-archive:{tmp_path}/b.tar") == raw_manifest(archive)


def test_docker_save_output_reads_like_skopeo(lab_world: LabWorld, world_env, in_world, tmp_path: Path) -> None:
    src = f"docker://{lab_world.source_registry}/fedora:39"
    copy_image(ref(src), ref("docker-daemon:labcheck-save-test:39"))
    in_world(["docker", "tag", "labcheck-save-test:39", "labcheck-save-test:other"])
    copy_image(ref(f"docker://{lab_world.source_registry}/fedora:40"), ref("docker-daemon:labcheck-save-test:40"))
    saved = tmp_path / "saved.tar"
    in_world(["docker", "save", "-o", str(saved), "labcheck-save-test:39", "labcheck-save-test:other",
              "labcheck-save-test:40"])
    for selector in (":labcheck-save-test:40", ":labcheck-save-test:other", ":@0", ":@1"):
        archive = f"docker-archive:{saved}{selector}"
        assert raw_manifest(archive) == skopeo(world_env, "inspect", "--raw", archive), selector
        assert labcheck(world_env, "inspect", archive) == skopeo(world_env, "inspect", archive), selector
    with pytest.raises(LabcheckError, match="expected 1 item, got 2"):
        raw_manifest(f"docker-archive:{saved}")
    with pytest.raises(ImageNotFoundError, match='Tag "docker.io/library/labcheck-save-test:41" not found'):
        raw_manifest(f"docker-archive:{saved}:labcheck-save-test:41")
    with pytest.raises(ImageNotFoundError, match="only 2 manifest items"):
        raw_manifest(f"docker-archive:{saved}:@2")
    copy_image(ref(f"docker-archive:{saved}:labcheck-save-test:40"), ref(f"dir:{tmp_path}/forty"))
    config = json.loads((tmp_path / "forty" / json.loads((tmp_path / "forty" / "manifest.json").read_bytes())["config"]["digest"][7:]).read_bytes())
    assert config["config"]["Labels"]["version"] == "40"


def test_gzip_compressed_archive_is_read(tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=1)
    copy_image(ref(f"dir:{image.path}"), ref(f"docker-archive:{tmp_path}/plain.tar"))
    (tmp_path / "packed.tar.gz").write_bytes(gzip.compress((tmp_path / "plain.tar").read_bytes()))
    packed = f"docker-archive:{tmp_path}/packed.tar.gz"
    assert raw_manifest(packed) == raw_manifest(f"docker-archive:{tmp_path}/plain.tar")
    # skopeo 1.9 itself fails here ("loading tar component manifest.json: unexpected EOF").


def _corrupt_first_layer(path: Path) -> None:
    manifest = json.loads((path / "manifest.json").read_bytes())
    blob = path / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[-10] ^= 0xFF
    blob.write_bytes(bytes(data))


def test_failed_copy_leaves_no_archive(tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=3)
    _corrupt_first_layer(image.path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises((DigestMismatchError, LabcheckError)):
        copy_image(ref(f"dir:{image.path}"), ref(f"docker-archive:{out}/x.tar"))
    assert list(out.iterdir()) == []


def test_wrong_diff_ids_in_the_config_are_refused(tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=1)
    manifest = json.loads((image.path / "manifest.json").read_bytes())
    config_file = image.path / image.config_digest.split(":")[1]
    config = json.loads(config_file.read_bytes())
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    data = json.dumps(config).encode()
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    config_file.unlink()
    (image.path / digest.split(":")[1]).write_bytes(data)
    manifest["config"].update(digest=digest, size=len(data))
    (image.path / "manifest.json").write_bytes(json.dumps(manifest).encode())
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DigestMismatchError, match="diffID"):
        copy_image(ref(f"dir:{image.path}"), ref(f"docker-archive:{out}/x.tar"))
    assert list(out.iterdir()) == []


def test_existing_archives_are_not_modified(tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=1)
    target = tmp_path / "x.tar"
    target.write_bytes(b"precious")
    with pytest.raises(LabcheckError, match="doesn't support modifying existing images"):
        copy_image(ref(f"dir:{image.path}"), ref(f"docker-archive:{target}"))
    assert target.read_bytes() == b"precious"
