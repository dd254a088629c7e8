"""The docker-archive format pieces: Go-compatible tar headers, legacy metadata, compression, the stream hand-off."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
import threading

import pytest

from labcheck.engine.archive.compression import DecompressingReader, DiffIDTee
from labcheck.engine.transports.dockersave.writer import go_compact, legacy_layers, top_level_raw
from labcheck.engine.transports.dockersave.stream import SequentialMembers
from labcheck.engine.archive.tarwriter import BLOCK, TarWriter, header


def test_header_matches_gos_ustar_bytes() -> None:
    block = header("578032e1c50a2042cd09730d7b4cc750673947d67a50c01d8008a84347de748c.tar", size=2007040)
    assert len(block) == BLOCK
    assert block[100:157] == b"0000444\x000000000\x000000000\x0000007520000\x0000000000000\x00020050\x00 0"
    assert block[257:265] == b"ustar\x0000"
    assert block[329:345] == b"0000000\x000000000\x00"


def test_written_archive_reads_back_and_ends_without_record_padding() -> None:
    out = io.BytesIO()
    writer = TarWriter(out)
    writer.add_bytes("a.json", b"{}")
    writer.add_symlink("id/layer.tar", "../a.json")
    writer.add_stream("b.tar", 3, io.BytesIO(b"abc"))
    writer.close()
    assert len(out.getvalue()) == 5 * BLOCK + 2 * BLOCK
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = [(m.name, m.type, m.mode, m.linkname) for m in tar.getmembers()]
        assert tar.extractfile("b.tar").read() == b"abc"  # type: ignore[union-attr]
    assert names == [("a.json", tarfile.REGTYPE, 0o444, ""), ("id/layer.tar", tarfile.SYMTYPE, 0, "../a.json"),
                     ("b.tar", tarfile.REGTYPE, 0o444, "")]


def test_stream_of_the_wrong_length_is_refused() -> None:
    from labcheck.engine.archive.tarwriter import TarWriteError

    with pytest.raises(TarWriteError):
        TarWriter(io.BytesIO()).add_stream("x", 5, io.BytesIO(b"abc"))
    with pytest.raises(TarWriteError):
        TarWriter(io.BytesIO()).add_stream("x", 2, io.BytesIO(b"abc"))


def test_huge_sizes_use_base256() -> None:
    block = header("big.tar", size=10 << 30)
    info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    assert info.size == 10 << 30


def test_go_compact_escapes_html_and_drops_whitespace() -> None:
    assert go_compact('{ "a" : [1, 2],\n "b": "<x> & \\"y\\" \u2028" }') == (
        '{"a":[1,2],"b":"\\u003cx\\u003e \\u0026 \\"y\\" \\u2028"}'
    )


def test_top_level_raw_keeps_each_members_text() -> None:
    raw = top_level_raw(b'{"a": {"x": 1},  "b" : "s", "a": [1]}')
    assert raw == {"a": "[1]", "b": '"s"'}


def test_legacy_layers_chain_parents_and_copy_config_fields_to_the_top() -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["A=<1>"]}}).encode()
    digests = ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    bottom, top = legacy_layers(digests, config)
    assert json.loads(bottom.json) == {"id": bottom.layer_id}
    top_json = json.loads(top.json)
    assert top_json["parent"] == bottom.layer_id and top_json["container"] is None
    assert b'"Env":["A=\\u003c1\\u003e"]' in top.json
    assert list(top_json) == sorted(top_json)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress, lambda d: d,
                                      lambda d: gzip.compress(d[:7]) + gzip.compress(d[7:])])
def test_decompression_and_diffid_tee(compress) -> None:
    data = os.urandom(1 << 18) * 9
    blob = compress(data)
    reader = DecompressingReader(io.BytesIO(blob))
    out = b"".join(iter(lambda: reader.read(100_000), b""))
    assert out == data
    tee = DiffIDTee(io.BytesIO(blob))
    passed = b"".join(iter(lambda: tee.read(65_536), b""))
    digest, diff_id, size = tee.finish()
    assert passed == blob and size == len(data)
    assert digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("data", [b"", b"abc", b"x" * 100_000])
def test_diffid_tee_of_small_uncompressed_streams(data: bytes) -> None:
    tee = DiffIDTee(io.BytesIO(data))
    passed = b"".join(iter(lambda: tee.read(4096), b""))
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    assert passed == data and tee.finish() == (expected, expected, len(data))


def _stream_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_sequential_members_hand_over_what_is_asked_and_spool_the_rest() -> None:
    content = {f"{i}.tar": os.urandom(300_000 + i) for i in range(4)}
    data = _stream_tar({"other.json": b"{}", **content})
    opened = []
    members = SequentialMembers(lambda: opened.append(1) or io.BytesIO(data), set(content))
    try:
        stream = members.open("2.tar")  # 0 and 1 pass first: spooled
        assert stream.read() == content["2.tar"]
        stream.close()
        for name in ("0.tar", "1.tar", "3.tar"):
            stream = members.open(name)
            assert stream.read() == content[name]
            stream.close()
        assert members.spooled_bytes == len(content["0.tar"]) + len(content["1.tar"])
        assert members.direct_members == 2
        assert opened == [1]
    finally:
        members.close()


def test_sequential_members_serve_concurrent_readers_without_spooling() -> None:
    content = {f"{i}.tar": os.urandom(200_000) for i in range(6)}
    members = SequentialMembers(lambda: io.BytesIO(_stream_tar(content)), set(content))
    results: dict[str, bytes] = {}
    barrier = threading.Barrier(len(content))

    def fetch(name: str) -> None:
        barrier.wait()
        stream = members.open(name)
        results[name] = stream.read()
        stream.close()

    threads = [threading.Thread(target=fetch, args=(name,)) for name in reversed(content)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    members.close()
    assert results == content
