"""Hand-made malicious archives are refused whole, and nothing is written outside where labcheck writes."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from labcheck.engine.archive.extract import UnsafeArchiveError, member_path, symlink_target
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.engine.transports.dockersave.stream import SequentialMembers, scan_metadata
from labcheck.engine.transports.dockersave import archive as docker_archive


@pytest.mark.parametrize("name", ["/etc/passwd", "../evil", "a/../../evil", "..", "", "a\x00b"])
def test_member_paths_leaving_the_archive_are_refused(name: str) -> None:
    with pytest.raises(UnsafeArchiveError):
        member_path(name)


@pytest.mark.parametrize(("name", "cleaned"), [("./a/b", "a/b"), ("a//b/", "a/b"), ("a/../b", "b"), ("x.tar", "x.tar")])
def test_member_paths_inside_are_cleaned(name: str, cleaned: str) -> None:
    assert member_path(name) == cleaned


@pytest.mark.parametrize("target", ["/etc", "../../etc/passwd", "../../../x"])
def test_symlinks_leaving_the_archive_are_refused(target: str) -> None:
    with pytest.raises(UnsafeArchiveError):
        symlink_target("abc/layer.tar", target)


def test_skopeos_legacy_symlink_is_accepted() -> None:
    assert symlink_target("abc/layer.tar", "../0123.tar") == "0123.tar"


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


_MANIFEST = ("manifest.json", json.dumps([{"Config": "c.json", "RepoTags": [], "Layers": ["l/layer.tar"]}]).encode())
_CONFIG = ("c.json", json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode())

MALICIOUS = {
    "dotdot": [("../evil", b"pwned"), _MANIFEST, _CONFIG],
    "absolute": [("/tmp/labcheck-evil-absolute", b"pwned"), _MANIFEST, _CONFIG],
    "symlink-to-etc": [_link("l", "/etc"), _MANIFEST, _CONFIG],
    "layer-symlink-to-passwd": [_link("l/layer.tar", "/etc/passwd"), _MANIFEST, _CONFIG],
    "relative-symlink-out": [_link("l/layer.tar", "../../../etc/passwd"), _MANIFEST, _CONFIG],
    "hardlink-out": [_link("l/layer.tar", "../etc/passwd", tarfile.LNKTYPE), _MANIFEST, _CONFIG],
}


def _snapshot(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_docker_archive_is_refused(case: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "evil.tar"
    archive.write_bytes(_tar(MALICIOUS[case]))
    before = _snapshot(tmp_path)
    ref = parse_image_reference(f"docker-archive:{archive}")
    with pytest.raises(UnsafeArchiveError) as err:
        docker_archive.TRANSPORT.open_source(ref)
    assert err.value.hint and "malicious" in err.value.hint
    assert _snapshot(tmp_path) == before
    assert not Path("/tmp/labcheck-evil-absolute").exists()


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_stream_is_refused(case: str) -> None:
    with pytest.raises(UnsafeArchiveError):
        scan_metadata(io.BytesIO(_tar(MALICIOUS[case])))


def test_stream_reader_refuses_unsafe_names_in_the_layer_pass(tmp_path: Path) -> None:
    members = SequentialMembers(lambda: io.BytesIO(_tar([("../evil", b"x"), ("a.tar", b"y")])), {"a.tar"})
    with pytest.raises(UnsafeArchiveError):
        members.open("a.tar")
    members.close()


def test_device_entries_are_refused() -> None:
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    with pytest.raises(UnsafeArchiveError):
        scan_metadata(io.BytesIO(_tar([dev, _MANIFEST])))


def test_spool_files_have_names_of_our_own(tmp_path: Path) -> None:
    # A wanted member passed before anyone asks is spooled under a counter name, whatever the archive calls it.
    data = _tar([("deep/name/../x.tar", b"first"), ("y.tar", b"second")])
    members = SequentialMembers(lambda: io.BytesIO(data), {"deep/x.tar", "y.tar"})
    try:
        second = members.open("y.tar")
        assert second.read() == b"second"
        first = members.open("deep/x.tar")
        assert first.read() == b"first"
        assert os.path.basename(first.name) == "0.layer"  # type: ignore[attr-defined]
        first.close()
    finally:
        members.close()
