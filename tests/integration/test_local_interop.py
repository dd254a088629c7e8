"""dir: and oci: interop with the real skopeo 1.9, both ways, byte for byte; no registry involved."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.imagebuild import write_dir_image, write_dir_list
from tests.tools import SKOPEO, labcheck, skopeo, tree
# skopeo and labcheck, each as a process of its own, on the same images.
pytestmark = [pytest.mark.tools, pytest.mark.command,
              pytest.mark.skipif(SKOPEO is None, reason="needs the real skopeo")]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    write_dir_image(root / "single", layers=3, labels={"name": "fedora", "odd": "<a & b>\u2028"})
    write_dir_list(root / "multi")
    skopeo("copy", f"dir:{root / 'single'}", f"oci:{root / 'oci'}:one")
    skopeo("copy", "--all", f"dir:{root / 'multi'}", f"oci:{root / 'oci'}:all")
    skopeo("copy", f"dir:{root / 'multi'}", f"dir:{root / 'picked'}")
    return root


COPIES = [
    # (source, destination under tmp, extra flags)
    ("dir:{i}/single", "dir:{o}/d", []),
    ("dir:{i}/single", "oci:{o}/l:tag", []),
    ("dir:{i}/multi", "dir:{o}/d", []),
    ("dir:{i}/multi", "dir:{o}/d", ["--all"]),
    ("dir:{i}/multi", "oci:{o}/l:tag", []),
    ("dir:{i}/multi", "oci:{o}/l:tag", ["--all"]),
    ("dir:{i}/multi", "oci:{o}/l", ["--all", "--override-arch", "arm64"]),
    ("dir:{i}/multi", "dir:{o}/d", ["--override-arch", "ppc64le"]),
    ("oci:{i}/oci:one", "dir:{o}/d", []),
    ("oci:{i}/oci:all", "dir:{o}/d", ["--all"]),
    ("oci:{i}/oci:all", "oci:{o}/l:x", []),
    ("oci:{i}/oci:one", "dir:{o}/d", ["--format", "v2s2"]),
    ("dir:{i}/single", "dir:{o}/d", ["--format", "oci"]),
    ("dir:{i}/picked", "oci:{o}/l:t", []),
]


@pytest.mark.parametrize("src,dst,flags", COPIES, ids=[" ".join([*f, s, d]) for s, d, f in COPIES])
def test_copy_writes_the_same_bytes_as_skopeo(images: Path, tmp_path: Path, src: str, dst: str, flags: list[str]) -> None:
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    source = src.format(i=images)
    ours = labcheck("copy", *flags, source, dst.format(o=tmp_path / "ours"))
    theirs = skopeo("copy", *flags, source, dst.format(o=tmp_path / "theirs"))
    assert tree(tmp_path / "ours") == tree(tmp_path / "theirs")
    # skopeo 1.9 prints these lines on stdout; labcheck keeps stdout clean and uses stderr.
    assert ours.stderr == theirs.stdout and ours.stdout == b""


@pytest.mark.parametrize("src,dst,flags", COPIES[:8], ids=[" ".join([*f, s, d]) for s, d, f in COPIES[:8]])
def test_skopeo_reads_what_labcheck_wrote(images: Path, tmp_path: Path, src: str, dst: str, flags: list[str]) -> None:
    written = dst.format(o=tmp_path)
    labcheck("copy", "-q", *flags, src.format(i=images), written)
    reread = ["--all"] if "--all" in flags else []
    skopeo("copy", *reread, written, f"dir:{tmp_path / 'back'}")
    labcheck("copy", "-q", *reread, written, f"dir:{tmp_path / 'back2'}")
    assert tree(tmp_path / "back") == tree(tmp_path / "back2")
    assert labcheck("inspect", written).stdout == skopeo("inspect", written).stdout


INSPECTS = [
    ("dir:{i}/single", []),
    ("dir:{i}/multi", []),
    ("dir:{i}/multi", ["--override-arch", "arm64"]),
    ("oci:{i}/oci:one", []),
    ("oci:{i}/oci:all", []),
    ("oci:{i}/oci:all", ["--override-arch", "ppc64le"]),
]


@pytest.mark.parametrize("mode", [[], ["--raw"], ["--config"], ["--config", "--raw"], ["--no-tags"]], ids=str)
@pytest.mark.parametrize("ref,flags", INSPECTS, ids=[" ".join([r, *f]) for r, f in INSPECTS])
def test_inspect_output_identical(images: Path, ref: str, flags: list[str], mode: list[str]) -> None:
    name = ref.format(i=images)
    theirs = subprocess.run([SKOPEO, *flags, "inspect", *mode, name], capture_output=True, check=True).stdout
    assert labcheck("inspect", *flags, *mode, name).stdout == theirs


def test_inspect_all_platforms_lists_instances(images: Path) -> None:
    import json

    out = json.loads(labcheck("inspect", "--all-platforms", f"oci:{images}/oci:all").stdout)
    index = json.loads(skopeo("inspect", "--raw", f"oci:{images}/oci:all").stdout)
    assert [e["Digest"] for e in out] == [m["digest"] for m in index["manifests"]]
    assert [(e["Architecture"], e.get("Variant", "")) for e in out] == [("amd64", ""), ("arm64", "v8"), ("ppc64le", "")]


def test_no_matching_platform_has_skopeos_text(images: Path) -> None:
    ours = labcheck("inspect", "--override-arch", "s390x", f"dir:{images}/multi", check=False)
    theirs = subprocess.run([SKOPEO, "--override-arch", "s390x", "inspect", f"dir:{images}/multi"], capture_output=True)
    text = 'no image found in manifest list for architecture s390x, variant \\"\\", OS linux'
    assert theirs.returncode == ours.returncode == 1
    assert text in theirs.stderr.decode() and text.replace('\\"', '"') in ours.stderr.decode()


def test_flipped_byte_fails_and_leaves_destination_as_it_was(images: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(images / "single", bad)
    manifest = __import__("json").loads((bad / "manifest.json").read_bytes())
    digest = manifest["layers"][1]["digest"]
    blob = bad / digest.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[40] ^= 0x01
    blob.write_bytes(bytes(data))
    skopeo("copy", f"dir:{images}/picked", f"dir:{tmp_path / 'dst'}")
    skopeo("copy", f"dir:{images}/picked", f"oci:{tmp_path / 'layout'}:keep")
    before = tree(tmp_path / "dst"), tree(tmp_path / "layout")
    for dst in (f"dir:{tmp_path / 'dst'}", f"oci:{tmp_path / 'layout'}:keep", f"dir:{tmp_path / 'new'}"):
        proc = labcheck("copy", f"dir:{bad}", dst, check=False)
        assert proc.returncode == 1
        assert digest in proc.stderr.decode()
    assert (tree(tmp_path / "dst"), tree(tmp_path / "layout")) == before
    assert not (tmp_path / "new").exists()
    assert skopeo("copy", f"dir:{bad}", f"dir:{tmp_path / 'new2'}", check=False).returncode == 1


def test_retagging_an_existing_layout_like_skopeo(images: Path, tmp_path: Path) -> None:
    steps = [
        ("dir:{i}/single", "t1", []),
        ("dir:{i}/multi", "t1", []),
        ("dir:{i}/single", "other", []),
        ("dir:{i}/single", "t1", []),
        ("dir:{i}/multi", "", ["--all"]),
        ("dir:{i}/single", "", []),
    ]
    skopeo("copy", f"dir:{images}/single", f"oci:{tmp_path / 'ours'}:seed")
    skopeo("copy", f"dir:{images}/single", f"oci:{tmp_path / 'theirs'}:seed")
    for src, tag, flags in steps:
        suffix = f":{tag}" if tag else ""
        labcheck("copy", "-q", *flags, src.format(i=images), f"oci:{tmp_path / 'ours'}{suffix}")
        skopeo("copy", "-q", *flags, src.format(i=images), f"oci:{tmp_path / 'theirs'}{suffix}")
        assert tree(tmp_path / "ours") == tree(tmp_path / "theirs"), (src, tag)


def test_refuses_a_non_empty_directory_that_is_not_an_image(images: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "thesis.tex").write_text("precious")
    proc = labcheck("copy", f"dir:{images}/single", f"dir:{junk}", check=False)
    assert proc.returncode == 1
    assert "not a containers image directory, don't want to overwrite important data" in proc.stderr.decode()
    assert skopeo("copy", f"dir:{images}/single", f"dir:{junk}", check=False).returncode == 1
    assert tree(junk) == {"thesis.tex": b"precious"}


def test_overwrites_an_image_directory_like_skopeo(images: Path, tmp_path: Path) -> None:
    for who, run in (("ours", labcheck), ("theirs", skopeo)):
        run("copy", "-q", "--all", f"dir:{images}/multi", f"dir:{tmp_path / who}")
        run("copy", "-q", f"dir:{images}/single", f"dir:{tmp_path / who}")
    assert tree(tmp_path / "ours") == tree(tmp_path / "theirs") == tree(images / "single")


def test_unsupported_transport_is_a_clear_error(images: Path, tmp_path: Path) -> None:
    proc = labcheck("copy", f"dir:{images}/single", f"ostree:{tmp_path / 'repo'}", check=False)
    assert proc.returncode == 2
    assert 'transport "ostree" is not supported by labcheck' in proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
