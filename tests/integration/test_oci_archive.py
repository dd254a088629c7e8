"""oci-archive: against the real skopeo 1.9: same archive contents both ways, same inspect output, atomic writes."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.imagebuild import write_dir_image, write_dir_list

SKOPEO = shutil.which("skopeo")
# skopeo and labcheck, each as a process of its own, on the same images.
pytestmark = [pytest.mark.tools, pytest.mark.command,
              pytest.mark.skipif(SKOPEO is None, reason="needs the real skopeo")]


def skopeo(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, timeout=300, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def labcheck(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([sys.executable, "-m", "labcheck.cli", *args], capture_output=True, timeout=300, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def members(path: Path) -> list[tuple[str, bytes, int, int, str]]:
    """(name, content, mode, type, owner) of every member, in archive order; mtimes left out."""
    out = []
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
            out.append((m.name, data, m.mode, int(m.type), f"{m.uname}:{m.gname}:{m.uid}:{m.gid}"))
    return out


def headers_without_times(path: Path) -> bytes:
    """The archive bytes with each header's mtime and checksum masked: everything else must match."""
    data = bytearray(path.read_bytes())
    offset = 0
    while offset < len(data):
        block = data[offset : offset + 512]
        if block == bytes(512):
            offset += 512
            continue
        size = int(bytes(block[124:135]).strip(b"\0") or b"0", 8)
        data[offset + 136 : offset + 156] = b"-" * 20
        offset += 512 + (size + 511) // 512 * 512
    return bytes(data)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    write_dir_image(root / "single", layers=3, labels={"name": "fedora", "vendor": "Fedora Project"})
    write_dir_list(root / "multi")
    skopeo("copy", f"dir:{root / 'single'}", f"oci-archive:{root / 'skopeo-single.tar'}:one")
    skopeo("copy", "--all", f"dir:{root / 'multi'}", f"oci-archive:{root / 'skopeo-multi.tar'}")
    return root


WRITES = [
    ("dir:{i}/single", "oci-archive:{o}/a.tar", []),
    ("dir:{i}/single", "oci-archive:{o}/a.tar:fedora", []),
    ("dir:{i}/multi", "oci-archive:{o}/a.tar:latest", []),
    ("dir:{i}/multi", "oci-archive:{o}/a.tar", ["--all"]),
    ("oci-archive:{i}/skopeo-multi.tar", "oci-archive:{o}/a.tar:x", ["--all"]),
]


@pytest.mark.parametrize("src,dst,flags", WRITES, ids=[" ".join([*f, s, d]) for s, d, f in WRITES])
def test_archive_is_what_skopeo_writes(images: Path, tmp_path: Path, src: str, dst: str, flags: list[str]) -> None:
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    labcheck("copy", "-q", *flags, src.format(i=images), dst.format(o=tmp_path / "ours"))
    skopeo("copy", "-q", *flags, src.format(i=images), dst.format(o=tmp_path / "theirs"))
    ours, theirs = tmp_path / "ours" / "a.tar", tmp_path / "theirs" / "a.tar"
    assert members(ours) == members(theirs)
    assert headers_without_times(ours) == headers_without_times(theirs)
    assert ours.stat().st_mode == theirs.stat().st_mode


@pytest.mark.parametrize("archive,image", [("skopeo-single.tar", "one"), ("skopeo-multi.tar", "")])
def test_reads_skopeos_archives_and_skopeo_reads_ours(images: Path, tmp_path: Path, archive: str, image: str) -> None:
    suffix = f":{image}" if image else ""
    theirs = f"oci-archive:{images / archive}{suffix}"
    labcheck("copy", "-q", "--all", theirs, f"dir:{tmp_path / 'ours'}")
    skopeo("copy", "-q", "--all", theirs, f"dir:{tmp_path / 'theirs'}")
    assert _tree(tmp_path / "ours") == _tree(tmp_path / "theirs")
    ours = f"oci-archive:{tmp_path / 'rewritten.tar'}{suffix}"
    labcheck("copy", "-q", "--all", theirs, ours)
    skopeo("copy", "-q", "--all", ours, f"dir:{tmp_path / 'back'}")
    assert _tree(tmp_path / "back") == _tree(tmp_path / "theirs")


@pytest.mark.parametrize("flags", [[], ["--raw"], ["--config"], ["--config", "--raw"], ["--override-arch", "arm64"]], ids=str)
@pytest.mark.parametrize("archive", ["skopeo-single.tar:one", "skopeo-single.tar", "skopeo-multi.tar"])
def test_inspect_equals_skopeo_inspect(images: Path, archive: str, flags: list[str]) -> None:
    ref = f"oci-archive:{images / archive}"
    platform = flags if flags[:1] == ["--override-arch"] else []
    mode = [] if platform else flags
    theirs = subprocess.run([SKOPEO, *platform, "inspect", *mode, ref], capture_output=True, check=True).stdout
    assert labcheck("inspect", *platform, *mode, ref).stdout == theirs


def test_a_failed_copy_leaves_the_old_archive_and_no_temp_files(images: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(images / "single", bad)
    manifest = json.loads((bad / "manifest.json").read_bytes())
    blob = bad / manifest["layers"][2]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[30] ^= 0xFF
    blob.write_bytes(bytes(data))
    target = tmp_path / "out" / "a.tar"
    target.parent.mkdir()
    shutil.copy(images / "skopeo-single.tar", target)
    before = target.read_bytes()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch), "PATH": "/usr/bin:/bin"}
    proc = labcheck("copy", f"dir:{bad}", f"oci-archive:{target}:one", check=False, env=env)
    assert proc.returncode == 1 and b"Digest did not match" in proc.stderr
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.tar"]
    assert list(scratch.iterdir()) == []
    proc = labcheck("copy", f"dir:{bad}", f"oci-archive:{tmp_path / 'new.tar'}", check=False, env=env)
    assert proc.returncode == 1 and not (tmp_path / "new.tar").exists()


def test_malicious_archive_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = labcheck("copy", f"oci-archive:{evil}", f"dir:{tmp_path / 'x'}", check=False,
                    env={"TMPDIR": str(scratch), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1
    assert "refusing to extract" in proc.stderr.decode() and "'..'" in proc.stderr.decode()
    assert not (tmp_path / "escaped").exists() and not (scratch / "escaped").exists()
    assert list(scratch.iterdir()) == [] and not (tmp_path / "x").exists()


@pytest.mark.lab
def test_registry_to_oci_archive_like_skopeo(lab_world, tmp_path: Path) -> None:
    import os

    env = {**os.environ, **lab_world.env()}
    src = f"docker://{lab_world.source_registry}/fedora"
    labcheck("copy", "-q", src, f"oci-archive:{tmp_path / 'ours.tar'}:fedora", env=env)
    skopeo("copy", "-q", src, f"oci-archive:{tmp_path / 'theirs.tar'}:fedora", env=env)
    assert members(tmp_path / "ours.tar") == members(tmp_path / "theirs.tar")


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
