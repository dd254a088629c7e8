"""Digest helpers and the verifying reader."""

import io

import pytest

from labcheck.engine.format.digest import (
    VerifyingReader,
    digest_hex,
    sha256_digest,
    validate_digest,
    InvalidDigestError,
    digest_problem,
)
from labcheck.engine.base.errors import DigestMismatchError


def test_sha256_digest() -> None:
    assert sha256_digest(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_verifying_reader_accepts_right_bytes() -> None:
    data = b"x" * 5000
    seen: list[int] = []
    reader = VerifyingReader(io.BytesIO(data), sha256_digest(data), on_read=seen.append)
    assert b"".join(iter(lambda: reader.read(1024), b"")) == data
    assert reader.verified and seen[-1] == 5000


def test_verifying_reader_names_the_digest() -> None:
    expected = sha256_digest(b"good")
    reader = VerifyingReader(io.BytesIO(b"evil"), expected)
    with pytest.raises(DigestMismatchError) as info:
        reader.drain()
    assert expected in str(info.value)
    assert info.value.expected == expected and info.value.actual == sha256_digest(b"evil")


def test_invalid_digests_are_refused_before_building_paths() -> None:
    for bad in ("sha256:../../etc", "md5:abc", "sha256:" + "A" * 64):
        with pytest.raises(InvalidDigestError):
            validate_digest(bad)
    assert digest_hex("sha256:" + "a" * 64) == "a" * 64


@pytest.mark.parametrize(("digest", "problem"), [
    ("sha256:" + "a" * 64, None),
    ("sha512:" + "b" * 128, None),
    ("sha256:" + "A" * 64, "invalid checksum digest format"),
    ("sha256:" + "a" * 63, "invalid checksum digest length"),
    ("md5:" + "a" * 32, "unsupported digest algorithm"),
    ("sha256", "invalid checksum digest format"),
])
def test_one_validator_gives_go_digests_verdict_for_references_and_paths(digest: str, problem: str | None) -> None:
    assert digest_problem(digest) == problem
    if digest.startswith("sha256:") and problem is None:
        assert validate_digest(digest) == digest
    else:  # only sha256 names a stored blob
        with pytest.raises(InvalidDigestError):
            validate_digest(digest)


def test_in_context_keeps_the_error_type_and_fields() -> None:
    from labcheck.engine.archive.extract import UnsafeArchiveError
    from labcheck.engine.base.errors import RegistryError, in_context

    error = in_context(RegistryError("unauthorized: authentication required", status=401, hint="h"), "reading manifest x")
    assert isinstance(error, RegistryError) and error.status == 401 and error.hint == "h"
    assert error.message == str(error.args[0]) == "reading manifest x: unauthorized: authentication required"
    unsafe = in_context(UnsafeArchiveError("bad", entry="../e", archive="a.tar"), "initializing source oci-archive:a.tar")
    assert unsafe.entry == "../e" and unsafe.message.endswith(": bad")
