"""dir: and oci: transports through the copy pipeline, without skopeo: atomicity, re-tagging, refusal."""

import json
from pathlib import Path

import pytest

from labcheck.engine.copy import copy_between
from labcheck.engine.base.errors import DigestMismatchError
from labcheck.engine.base.options import CopyOptions
from labcheck.engine.transports.dir import DirImageDestination, DirImageSource, NotAnImageDirectoryError
from labcheck.engine.transports.oci import OCIImageDestination, OCIImageSource
from labcheck.engine.base.interfaces import ProgressEvent
from tests.imagebuild import write_dir_image, write_dir_list


def _copy(src, dst, **kw):
    try:
        return copy_between(src, dst, **kw)
    finally:
        dst.close()


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_dir_to_dir_is_byte_identical(tmp_path: Path) -> None:
    img = write_dir_image(tmp_path / "src", layers=3)
    events: list[ProgressEvent] = []
    result = _copy(DirImageSource(img.path), DirImageDestination(tmp_path / "dst"), progress=events.append)
    assert _tree(tmp_path / "dst") == _tree(img.path)
    assert result.manifest_digest == img.manifest_digest
    kinds = [e.kind for e in events if e.kind != "blob-progress"]
    assert kinds[:4] == ["start", "blob", "blob", "blob"]
    assert kinds[-3:] == ["config", "manifest", "done"]


def test_corrupt_blob_fails_and_leaves_destination_as_it_was(tmp_path: Path) -> None:
    old = write_dir_image(tmp_path / "dst", seed="old")
    before = _tree(old.path)
    img = write_dir_image(tmp_path / "src", seed="new", layer_size=3 << 20)
    victim = img.path / img.layer_digests[1].split(":")[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError) as info:
        _copy(DirImageSource(img.path), DirImageDestination(old.path))
    assert img.layer_digests[1] in str(info.value)
    assert _tree(old.path) == before
    with pytest.raises(DigestMismatchError):
        _copy(DirImageSource(img.path), DirImageDestination(tmp_path / "fresh"))
    assert not (tmp_path / "fresh").exists()
    with pytest.raises(DigestMismatchError):
        _copy(DirImageSource(img.path), OCIImageDestination(tmp_path / "layout", "t"))
    assert not (tmp_path / "layout").exists()


def test_refuses_non_image_directory(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "precious").write_text("x")
    with pytest.raises(NotAnImageDirectoryError, match="don't want to overwrite important data"):
        DirImageDestination(tmp_path / "junk")
    assert (tmp_path / "junk" / "precious").read_text() == "x"


def test_oci_retagging_moves_the_name(tmp_path: Path) -> None:
    a = write_dir_image(tmp_path / "a", seed="a")
    b = write_dir_image(tmp_path / "b", seed="b")
    layout = tmp_path / "layout"
    da = _copy(DirImageSource(a.path), OCIImageDestination(layout, "t1")).manifest_digest
    db = _copy(DirImageSource(b.path), OCIImageDestination(layout, "t1")).manifest_digest
    _copy(DirImageSource(a.path), OCIImageDestination(layout, "other"))
    entries = json.loads((layout / "index.json").read_bytes())["manifests"]
    assert [(e["digest"], e.get("annotations")) for e in entries] == [
        (da, {"org.opencontainers.image.ref.name": "other"}),
        (db, {"org.opencontainers.image.ref.name": "t1"}),
    ]
    assert OCIImageSource(layout, "t1").get_manifest()[0] == (layout / "blobs/sha256" / db[7:]).read_bytes()


def test_all_copies_every_instance_and_reuses_blobs(tmp_path: Path) -> None:
    lst = write_dir_list(tmp_path / "list")
    events: list[ProgressEvent] = []
    _copy(DirImageSource(lst.path), DirImageDestination(tmp_path / "d"), options=CopyOptions(all_images=True))
    assert _tree(tmp_path / "d") == _tree(lst.path)
    _copy(DirImageSource(lst.path), OCIImageDestination(tmp_path / "o", "x"), options=CopyOptions(all_images=True))
    _copy(DirImageSource(lst.path), OCIImageDestination(tmp_path / "o", "y"), progress=events.append,
          options=CopyOptions(all_images=True))
    assert [e.index for e in events if e.kind == "image"] == [1, 2, 3]
    assert {e.kind for e in events} >= {"list-start", "blob-skipped", "list-manifest", "list-done"}
    assert not any(e.kind == "blob-done" for e in events)
