"""Pieces of the sif: and tarball: readers that need no tools: SIF headers, definition files, Go times."""

from __future__ import annotations

import io
import struct

import pytest

from labcheck.engine.format.gojson import time_text
from labcheck.engine.transports.sif import SifError, SifFile, parse_deffile
from tests.sifwrite import write_sif


def test_go_time_text_trims_nanoseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    assert time_text(1_600_000_000_000_000_000) == "2020-09-13T12:26:40Z"
    assert time_text(1_600_000_000_123_456_000) == "2020-09-13T12:26:40.123456Z"


def test_a_sif_header_is_read(tmp_path) -> None:
    write_sif(tmp_path / "x.sif", b"hsqs" + b"\0" * 100, arch="arm64", deffile=b"%runscript\n echo\n")
    with open(tmp_path / "x.sif", "rb") as f:
        sif = SifFile.load(f)
    assert (sif.arch, sif.modified_at) == ("arm64", 1_600_000_100)
    assert sif.image_id == "00000000-0000-0000-0000-000000001234"
    assert sif.primary_partition().size == 104
    assert sif.deffile() is not None


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "reading global header: EOF"),
        (b"#!" * 20, "reading global header: unexpected EOF"),
        (b"\0" * 200, "invalid SIF magic"),
    ],
)
def test_broken_sif_files_fail_as_in_sylabs_sif(data: bytes, message: str) -> None:
    with pytest.raises(SifError, match=message):
        SifFile.load(io.BytesIO(data))


def test_a_sif_without_a_primary_partition() -> None:
    header = struct.pack("<32s10s3s3s16s8q", b"", b"SIF_MAGIC\0", b"01\0", b"02\0", b"\0" * 16, 0, 0, 1, 1, 128, 585, 713, 0)
    with pytest.raises(SifError, match="no objects in image"):
        SifFile.load(io.BytesIO(header + b"\0" * 585)).primary_partition()


def test_deffile_sections() -> None:
    text = b"Bootstrap: docker\r\n%environment\r\n  export A=1\n  # no\n\n%runscript\n  echo $A\n\n%post\n  x\n"
    assert parse_deffile(text) == (["export A=1"], ["echo $A", ""])
