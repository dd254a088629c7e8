"""sif: and tarball: read as the real skopeo 1.9 reads them: same inputs, same dir: results (byte for byte
where skopeo's output is deterministic), same first line of the errors; skopeo reads what labcheck wrote."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.sifwrite import write_sif
from tests.tools import SKOPEO, labcheck, skopeo, tree

pytestmark = [pytest.mark.tools, pytest.mark.skipif(SKOPEO is None, reason="needs the real skopeo")]


def first_error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The message alone: labcheck's `labcheck copy: MSG`, skopeo's `level=fatal msg="MSG"`."""
    line = proc.stderr.decode().splitlines()[0]
    if 'msg="' in line:
        return json.loads(line[line.index('msg="') + 4 :])
    return line.split(": ", 1)[1]


def layer_tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_600_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    (root / "plain.tar").write_bytes(layer_tar({"etc/motd": b"hello\n"}))
    (root / "one.tgz").write_bytes(gzip.compress(layer_tar({"bin/hi": b"#!/bin/sh\necho hi\n"}), mtime=0))
    # two gzip members in one file: both are the layer's bytes
    (root / "two.tgz").write_bytes(gzip.compress(layer_tar({"a": b"a" * 5000}), mtime=0)
                                   + gzip.compress(b"\0" * 1024, mtime=0))
    (root / "cut.tgz").write_bytes((root / "one.tgz").read_bytes()[:-12])
    for i, name in enumerate(("plain.tar", "one.tgz", "two.tgz")):
        os.utime(root / name, ns=(1_600_000_000_123_456_789 + i, 1_600_000_000_123_456_789 + i * 1_000))

    rootfs = root / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "motd").write_text("hello from sif\n")
    (rootfs / "bin" / "hi").write_text("#!/bin/sh\necho hi\n")
    (rootfs / "bin" / "hi").chmod(0o755)
    (rootfs / "bin" / "hey").symlink_to("hi")
    os.chown(rootfs / "etc" / "motd", 1000, 1000)
    subprocess.run(["mksquashfs", str(rootfs), str(root / "rootfs.sqfs"), "-noappend", "-quiet",
                    "-all-time", "1600000000"], check=True, capture_output=True)
    squashfs = (root / "rootfs.sqfs").read_bytes()
    write_sif(root / "plain.sif", squashfs)
    write_sif(root / "def.sif", squashfs, arch="arm64", deffile=(
        b"Bootstrap: docker\nFrom: debian\n%environment\n  export A=1\n  # a comment\n\n"
        b"%runscript\n  echo run $A\n\n%labels\n  x y\n"))
    write_sif(root / "nodef.sif", squashfs, deffile=b"Bootstrap: docker\n%labels\n x y\n")
    return root


@pytest.mark.parametrize("files", ["plain.tar", "one.tgz", "one.tgz:plain.tar:two.tgz"])
def test_tarball_to_dir_is_skopeos_tree(inputs: Path, tmp_path: Path, files: str) -> None:
    ref = "tarball:" + ":".join(str(inputs / name) for name in files.split(":"))
    skopeo("copy", "-q", ref, f"dir:{tmp_path / 'theirs'}")
    labcheck("copy", "-q", ref, f"dir:{tmp_path / 'ours'}")
    assert tree(tmp_path / "ours") == tree(tmp_path / "theirs")
    assert json.loads(labcheck("inspect", ref).stdout) == json.loads(skopeo("inspect", ref).stdout)


def test_tarball_from_stdin(inputs: Path, tmp_path: Path) -> None:
    data = (inputs / "one.tgz").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "labcheck.cli", "copy", "-q", "tarball:-", f"dir:{tmp_path / 'ours'}"],
                          input=data, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    manifest = json.loads((tmp_path / "ours" / "manifest.json").read_bytes())
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    skopeo("copy", "-q", f"dir:{tmp_path / 'ours'}", f"oci:{tmp_path / 'layout'}:x")


@pytest.mark.parametrize("case", ["missing", "truncated", "destination"])
def test_tarball_errors_read_as_skopeos(inputs: Path, tmp_path: Path, case: str) -> None:
    src, dst = {
        "missing": (f"tarball:{tmp_path / 'nope.tar'}", f"dir:{tmp_path / 'd'}"),
        "truncated": (f"tarball:{inputs / 'cut.tgz'}", f"dir:{tmp_path / 'd'}"),
        "destination": (f"dir:{tmp_path / 'd'}", f"tarball:{inputs / 'plain.tar'}"),
    }[case]
    if case == "destination":
        skopeo("copy", "-q", f"tarball:{inputs / 'plain.tar'}", src)
    ours = labcheck("copy", "-q", src, dst, check=False)
    assert not (tmp_path / "d").exists() or case == "destination"
    theirs = skopeo("copy", "-q", src, dst, check=False)
    assert ours.returncode != 0 and theirs.returncode != 0
    assert first_error_line(ours) == first_error_line(theirs)
    assert b"Traceback" not in ours.stderr


def layer_members(directory: Path) -> tuple[dict, dict, list[tuple]]:
    """(manifest, config, layer members) with the layer's digest (GNU tar writes ctimes) taken out."""
    manifest = json.loads((directory / "manifest.json").read_bytes())
    config = json.loads((directory / manifest["config"]["digest"][7:]).read_bytes())
    layer = directory / manifest["layers"][0]["digest"][7:]
    members = []
    with tarfile.open(layer) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else b""
            fixed_time = m.name != "./podman" and not m.name.startswith("./podman/")
            members.append((m.name, m.type, m.mode, m.uid, m.gid, m.linkname, data, m.mtime if fixed_time else 0))
    for d in (manifest["config"], *manifest["layers"]):
        d.update(digest="", size=0)
    config["rootfs"]["diff_ids"] = []
    config["history"][0]["created_by"] = ""
    return manifest, config, sorted(members)


@pytest.mark.parametrize("name", ["plain.sif", "def.sif", "nodef.sif"])
def test_sif_to_dir_is_skopeos_image(inputs: Path, tmp_path: Path, name: str) -> None:
    ref = f"sif:{inputs / name}"
    skopeo("copy", "-q", ref, f"dir:{tmp_path / 'theirs'}")
    labcheck("copy", "-q", ref, f"dir:{tmp_path / 'ours'}")
    assert layer_members(tmp_path / "ours") == layer_members(tmp_path / "theirs")
    ours = json.loads(labcheck("inspect", ref).stdout)
    theirs = json.loads(skopeo("inspect", ref).stdout)
    for info in (ours, theirs):
        info.pop("Digest"), info.pop("Layers")
    assert ours == theirs
    # skopeo reads what labcheck wrote
    skopeo("copy", "-q", f"dir:{tmp_path / 'ours'}", f"oci:{tmp_path / 'layout'}:x")
    assert skopeo("inspect", f"oci:{tmp_path / 'layout'}:x").returncode == 0


def test_sif_deffile_becomes_the_command(inputs: Path, tmp_path: Path) -> None:
    labcheck("copy", "-q", f"sif:{inputs / 'def.sif'}", f"dir:{tmp_path / 'ours'}")
    manifest, config, members = layer_members(tmp_path / "ours")
    assert config["architecture"] == "arm64"
    assert config["config"] == {"Cmd": ["/podman/runscript"]}
    script = next(m for m in members if m[0] == "./podman/runscript")
    assert script[6] == b"#!/bin/bash\nexport A=1\necho run $A\n\n"
    assert (script[2], script[3]) == (0o755, 0)


@pytest.mark.parametrize("case", ["missing", "not-sif", "empty", "destination"])
def test_sif_errors_read_as_skopeos(inputs: Path, tmp_path: Path, case: str) -> None:
    (tmp_path / "empty.sif").write_bytes(b"")
    src, dst = {
        "missing": (f"sif:{tmp_path / 'nope.sif'}", f"dir:{tmp_path / 'd'}"),
        "not-sif": (f"sif:{inputs / 'plain.tar'}", f"dir:{tmp_path / 'd'}"),
        "empty": (f"sif:{tmp_path / 'empty.sif'}", f"dir:{tmp_path / 'd'}"),
        "destination": (f"tarball:{inputs / 'plain.tar'}", f"sif:{tmp_path / 'out.sif'}"),
    }[case]
    ours = labcheck("copy", "-q", src, dst, check=False)
    assert not (tmp_path / "d").exists() and not (tmp_path / "out.sif").exists()
    theirs = skopeo("copy", "-q", src, dst, check=False)  # skopeo makes the dir: destination before it fails
    assert ours.returncode == theirs.returncode == 1
    assert first_error_line(ours) == first_error_line(theirs)


def test_sif_leaves_no_temporary_files(inputs: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.run([sys.executable, "-m", "labcheck.cli", "copy", "-q", f"sif:{inputs / 'def.sif'}",
                           f"dir:{tmp_path / 'ours'}"], env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert list(scratch.iterdir()) == []
