"""Safe extraction of oci-archive tars: hand-made malicious archives are refused and write nothing outside."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from labcheck.engine.archive import extract as safetar, tarwriter
from labcheck.engine.archive.extract import UnsafeArchiveError, member_path, symlink_target


def make_tar(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.fixture
def box(tmp_path: Path) -> tuple[Path, Path]:
    """(extraction dir, a sibling dir that must stay empty)."""
    (tmp_path / "out").mkdir()
    (tmp_path / "outside").mkdir()
    return tmp_path / "out", tmp_path / "outside"


def assert_nothing_outside(outside: Path) -> None:
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    "entries,reason",
    [
        ([("/etc/evil", b"x")], "absolute path"),
        ([("../outside/evil", b"x")], "'..'"),
        ([("blobs/../../outside/evil", b"x")], "'..'"),
        ([link("esc", "../outside")], "outside the archive"),
        ([link("esc", "/tmp")], "outside the archive"),
        ([link("a/b/esc", "../../../outside/x")], "outside the archive"),
        ([link("hard", "../outside/x", tarfile.LNKTYPE)], "'..'"),
        ([link("hard", "/etc/passwd", tarfile.LNKTYPE)], "absolute path"),
        ([link("hard", "missing", tarfile.LNKTYPE)], "not a file extracted before it"),
        ([link("inner", "blobs"), ("blobs/x", b""), ("inner/x", b"x")], "not a directory"),
    ],
    ids=["absolute", "dotdot", "nested-dotdot", "symlink-up", "symlink-absolute", "deep-symlink-up",
         "hardlink-up", "hardlink-absolute", "hardlink-missing", "through-symlink"],
)
def test_malicious_entries_are_refused(tmp_path: Path, box, entries, reason: str) -> None:
    out, outside = box
    archive = make_tar(tmp_path / "evil.tar", entries)
    with pytest.raises(UnsafeArchiveError) as info:
        safetar.extract(archive, out)
    assert reason in str(info.value)
    assert info.value.hint and "will not extract" in info.value.hint
    assert_nothing_outside(outside)


def test_symlink_then_write_through_it_is_refused(tmp_path: Path, box) -> None:
    out, outside = box
    archive = make_tar(tmp_path / "evil.tar", [link("d", "../outside"), ("d/evil", b"x")])
    with pytest.raises(UnsafeArchiveError):
        safetar.extract(archive, out)
    assert_nothing_outside(outside)


def test_file_replacing_a_planted_symlink_does_not_follow_it(tmp_path: Path, box) -> None:
    out, outside = box
    archive = make_tar(tmp_path / "t.tar", [link("f", "g"), ("f", b"data")])
    safetar.extract(archive, out)
    assert not (out / "f").is_symlink() and (out / "f").read_bytes() == b"data"
    assert_nothing_outside(outside)


def test_devices_and_fifos_are_refused(tmp_path: Path, box) -> None:
    out, outside = box
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    with pytest.raises(UnsafeArchiveError, match="special file"):
        safetar.extract(make_tar(tmp_path / "f.tar", [fifo]), out)


def test_safe_archive_with_links_inside_extracts(tmp_path: Path, box) -> None:
    out, outside = box
    entries = [("./blobs/sha256/aa", b"blob"), link("blobs/sha256/bb", "aa"), link("cc", "blobs/sha256/aa", tarfile.LNKTYPE),
               ("index.json", b"{}")]
    safetar.extract(make_tar(tmp_path / "ok.tar.gz", entries, "w:gz"), out)
    assert (out / "blobs/sha256/bb").read_bytes() == b"blob"
    assert (out / "cc").read_bytes() == b"blob"
    assert (out / "index.json").read_bytes() == b"{}"
    assert_nothing_outside(outside)


def test_not_a_tar_is_a_clear_error(tmp_path: Path, box) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(Exception, match="is not a tar archive"):
        safetar.extract(junk, box[0])


def test_member_path_and_link_checks() -> None:
    assert member_path("./") == "."
    assert member_path("./blobs//sha256/x") == "blobs/sha256/x"
    assert member_path("a/../b") == "b"  # cleaned as Go's path.Clean, still inside
    for bad in ("/x", "a/../../b", ""):
        with pytest.raises(UnsafeArchiveError):
            member_path(bad)
    assert symlink_target("a/b", "../c") == "c"
    assert symlink_target("a/b", "./x/../../c") == "c"
    for outside in ("../../c", ""):
        with pytest.raises(UnsafeArchiveError):
            symlink_target("a/b", outside)


def test_dotdot_that_stays_inside_is_extracted_where_it_points(tmp_path: Path, box) -> None:
    out, outside = box
    safetar.extract(make_tar(tmp_path / "ok.tar", [("blobs/../index.json", b"{}")]), out)
    assert (out / "index.json").read_bytes() == b"{}"
    assert_nothing_outside(outside)


def test_write_tree_round_trips_and_uses_go_headers(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "blobs" / "sha256" / "b").write_bytes(b"x" * 700)
    (root / "index.json").write_bytes(b"{}")
    buf = io.BytesIO()
    tarwriter.write_tree(root, buf)
    data = buf.getvalue()
    assert len(data) % 512 == 0 and data.endswith(b"\0" * 1024)
    assert len(data) == 512 * (3 + 2 + 1 + 1) + 1024  # headers + 700 bytes in 2 blocks + {} in 1
    assert data[100:108] == b"0040755\0" and data[257:265] == b"ustar\x0000"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["blobs", "blobs/sha256", "blobs/sha256/b", "index.json"]
    os.mkdir(tmp_path / "back")
    safetar.extract(_write(tmp_path / "t.tar", data), tmp_path / "back")
    assert (tmp_path / "back" / "blobs" / "sha256" / "b").read_bytes() == b"x" * 700


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
