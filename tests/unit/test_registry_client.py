"""The registry client against the in-process registry (tests/servers/registry.py): auth, tokens, TLS
trust, uploads, tags, retries and faults, in the fast tier. The same protocol against the real
distribution registry: tests/integration/test_registry_protocol.py (marked lab)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
import traceback
from pathlib import Path
from typing import Iterator

import pytest

from labcheck.engine.base.errors import AuthenticationError, ImageNotFoundError, RegistryError
from labcheck.engine.base.interfaces import BlobInfo
from labcheck.engine.base.options import Credentials, SideOptions
from labcheck.engine.registry.client import RegistryClient
from labcheck.errors import LabcheckError
from labcheck.labenv.process import free_port
from labcheck.labenv.tls import SYSTEM_CA_BUNDLES, ensure_lab_pki
from tests.imagebuild import image_blobs, V2S2
from tests.servers.registry import SERVICE, InProcessRegistry, sha256

SYSTEM_BUNDLE = next(p for p in SYSTEM_CA_BUNDLES if os.path.exists(p))
USER, PASSWORD = "student", "s3cret-" + secrets.token_hex(8)


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inprocess-tls")
    ensure_lab_pki(path)
    return path


def seed(registry: InProcessRegistry, name: str = "fedora", tag: str = "38", **image) -> bytes:
    """Put a small v2s2 image into the registry directly; returns its manifest."""
    manifest, config, layers = image_blobs(**image)
    for blob in (config, *layers):
        registry.add_blob(name, blob)
    registry.add_manifest(name, manifest, V2S2, tag)
    return manifest


def blobs_of(manifest: bytes) -> list[BlobInfo]:
    parsed = json.loads(manifest)
    return [BlobInfo(d["digest"], d["size"], d["mediaType"]) for d in [parsed["config"], *parsed["layers"]]]


def client(registry: InProcessRegistry, tls_dir: Path, repository: str = "fedora", *, push: bool = False,
           retry_delay: float = 1.0, **opts) -> RegistryClient:
    return RegistryClient(registry.address, repository, SideOptions(ca_file=str(tls_dir / "ca.crt"), **opts),
                          push=push, retry_delay=retry_delay)


def assert_secret_absent(exc: BaseException, *secrets_: str) -> None:
    __tracebackhide__ = True
    for text in (str(exc), repr(exc), "".join(traceback.format_exception(exc))):
        for secret in secrets_:
            assert secret not in text


@pytest.fixture
def anonymous(tls_dir: Path) -> Iterator[InProcessRegistry]:
    with InProcessRegistry(tls_dir=tls_dir) as registry:
        yield registry


@pytest.fixture
def basic(tls_dir: Path) -> Iterator[InProcessRegistry]:
    with InProcessRegistry(tls_dir=tls_dir, auth="basic", users={USER: PASSWORD}) as registry:
        yield registry


@pytest.fixture
def token(tls_dir: Path) -> Iterator[InProcessRegistry]:
    with InProcessRegistry(tls_dir=tls_dir, auth="token", users={USER: PASSWORD}) as registry:
        seed(registry, "seeded/fedora")
        yield registry


# --- ping and Basic auth -------------------------------------------------------------------------------


def test_ping_gets_the_basic_challenge_and_the_credentials_work(basic: InProcessRegistry, tls_dir: Path) -> None:
    manifest = seed(basic)
    reader = client(basic, tls_dir, creds=Credentials(USER, PASSWORD))
    assert reader.base_url() == f"https://{basic.address}"
    assert reader._challenge is not None and reader._challenge.scheme == "basic"
    assert reader.get_manifest("38") == (manifest, V2S2)
    assert reader.list_tags() == ["38"]


def test_wrong_password_is_an_authentication_error_without_the_password(basic: InProcessRegistry,
                                                                       tls_dir: Path) -> None:
    password = "wrong-" + secrets.token_hex(12)
    with pytest.raises(AuthenticationError) as info:
        client(basic, tls_dir, creds=Credentials(USER, password)).get_manifest("38")
    assert info.value.status == 401 and not info.value.temporary
    assert "unauthorized: authentication required" in info.value.message
    assert "refused the credentials" in (info.value.hint or "")
    assert_secret_absent(info.value, password)


def test_anonymous_access_asks_for_credentials(basic: InProcessRegistry, tls_dir: Path) -> None:
    with pytest.raises(AuthenticationError) as info:
        client(basic, tls_dir, no_creds=True).manifest_digest("38")
    assert info.value.status == 401 and "--dest-creds" in (info.value.hint or "")


def test_credentials_come_from_registry_auth_file(basic: InProcessRegistry, tls_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {basic.address: {"auth": auth}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(authfile))
    assert client(basic, tls_dir, "nothing-here").manifest_digest("38") is None  # authenticated: a 404


# --- Bearer tokens ---------------------------------------------------------------------------------------


def test_anonymous_pull_gets_a_pull_token(token: InProcessRegistry, tls_dir: Path) -> None:
    reader = client(token, tls_dir, "seeded/fedora")
    raw, media_type = reader.get_manifest("38")
    assert media_type == V2S2
    blob, size = reader.get_blob(blobs_of(raw)[0].digest)
    with blob:
        assert len(blob.read()) == size
    assert reader._challenge is not None and reader._challenge.params["realm"] == token.realm
    assert token.token_requests == [{"scopes": ["repository:seeded/fedora:pull"], "user": None, "service": SERVICE}]


def test_push_with_credentials_gets_one_push_token(token: InProcessRegistry, tls_dir: Path) -> None:
    source = client(token, tls_dir, "seeded/fedora")
    writer = client(token, tls_dir, "pushed/fedora", push=True, creds=Credentials(USER, PASSWORD))
    raw, media_type = source.get_manifest("38")
    token.token_requests.clear()
    for blob in blobs_of(raw):
        reader, _ = source.get_blob(blob.digest)
        with reader:
            writer.upload_blob(iter(lambda: reader.read(1 << 16), b""), blob.digest)
    writer.put_manifest("38", raw, media_type)
    assert writer.list_tags() == ["38"]
    pushes = [r for r in token.token_requests if r["user"] == USER]
    assert pushes == [{"scopes": ["repository:pushed/fedora:pull,push"], "user": USER, "service": SERVICE}]


def test_anonymous_push_is_refused_after_one_fresh_token(token: InProcessRegistry, tls_dir: Path) -> None:
    writer = client(token, tls_dir, "anon/fedora", push=True)
    with pytest.raises(AuthenticationError) as info:
        writer.upload_blob(iter([b"x"]), sha256(b"x"))
    assert info.value.status == 401 and info.value.diagnostics == [{"code": "insufficient_scope"}]
    assert len(token.token_requests) == 2  # the first token, then one fresh one: no loop


def test_token_server_refusing_wrong_credentials(token: InProcessRegistry, tls_dir: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    password = "wrong-" + secrets.token_hex(12)
    with pytest.raises(AuthenticationError) as info:
        client(token, tls_dir, "seeded/fedora", creds=Credentials(USER, password)).get_manifest("38")
    assert f"the token server refused the credentials of user '{USER}'" in info.value.message
    assert info.value.url == token.realm
    assert_secret_absent(info.value, password)
    assert password not in caplog.text and len(token.token_requests) == 1


def test_token_server_refusing_anonymous_access(token: InProcessRegistry, tls_dir: Path) -> None:
    token.anonymous_pull = False
    with pytest.raises(AuthenticationError) as info:
        client(token, tls_dir, "seeded/fedora").get_manifest("38")
    assert "refused anonymous access" in info.value.message and "--creds" in (info.value.hint or "")


def test_access_token_instead_of_token_lives_the_default_lifetime(token: InProcessRegistry, tls_dir: Path) -> None:
    token.token_field, token.expires_in = "access_token", None
    reader = client(token, tls_dir, "seeded/fedora")
    reader.get_manifest("38")
    reader.manifest_digest("38")
    assert len(token.token_requests) == 1


def test_an_expired_token_is_fetched_again(token: InProcessRegistry, tls_dir: Path) -> None:
    token.expires_in = 1
    reader = client(token, tls_dir, "seeded/fedora")
    reader.manifest_digest("38")
    reader.manifest_digest("38")
    assert len(token.token_requests) == 1
    time.sleep(1.1)
    assert reader.manifest_digest("38")
    assert len(token.token_requests) == 2


def test_insufficient_scope_gets_one_retry_with_a_fresh_token(token: InProcessRegistry, tls_dir: Path) -> None:
    token.narrow_tokens = 1
    assert client(token, tls_dir, "seeded/fedora").manifest_digest("38")
    assert len(token.token_requests) == 2
    token.token_requests.clear()
    token.narrow_tokens = 10
    with pytest.raises(AuthenticationError) as info:
        client(token, tls_dir, "seeded/fedora").manifest_digest("38")
    assert info.value.diagnostics == [{"code": "insufficient_scope"}] and len(token.token_requests) == 2


def test_registry_token_is_sent_as_given(token: InProcessRegistry, tls_dir: Path) -> None:
    given = token.issue({("seeded/fedora", "pull")})
    assert client(token, tls_dir, "seeded/fedora", registry_token=given).manifest_digest("38")
    assert token.token_requests == []


# --- TLS trust -----------------------------------------------------------------------------------------------


def test_ssl_cert_file_is_trusted_and_requests_ca_bundle_is_not(anonymous: InProcessRegistry, tls_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    seed(anonymous)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_dir / "bundle.crt"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_BUNDLE)
    assert RegistryClient(anonymous.address, "fedora").manifest_digest("38")
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_BUNDLE)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_dir / "ca.crt"))
    with pytest.raises(RegistryError) as info:
        RegistryClient(anonymous.address, "fedora").get_manifest("38")
    assert "x509: certificate signed by unknown authority" in info.value.message
    assert "SSL_CERT_FILE" in (info.value.hint or "") and info.value.status is None


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_cert_dir_is_trusted_and_tls_verify_false_needs_no_trust(anonymous: InProcessRegistry, tls_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    seed(anonymous)
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_BUNDLE)
    assert RegistryClient(anonymous.address, "fedora", SideOptions(cert_dir=str(tls_dir / "cert-dir"))).manifest_digest("38")
    insecure = RegistryClient(anonymous.address, "fedora", SideOptions(tls_verify=False))
    assert insecure.manifest_digest("38") and insecure.base_url().startswith("https://")


def test_plain_http_registry_needs_tls_verify_false() -> None:
    with InProcessRegistry() as plain:
        seed(plain)
        insecure = RegistryClient(plain.address, "fedora", SideOptions(tls_verify=False))
        assert insecure.manifest_digest("38") and insecure.base_url() == f"http://{plain.address}"
        with pytest.raises(RegistryError) as info:
            RegistryClient(plain.address, "fedora").manifest_digest("38")
    assert "remote error: tls:" in info.value.message  # Go's words for a TLS handshake with a plain-HTTP server


# --- tags ------------------------------------------------------------------------------------------------------


def test_list_tags_follows_link_pagination(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    manifest = seed(anonymous, "tags/fedora")
    names = [f"t{i:03d}" for i in range(120)]
    anonymous.add_manifest("tags/fedora", manifest, V2S2, *names)
    assert client(anonymous, tls_dir, "tags/fedora").list_tags(page_size=50) == sorted([*names, "38"])
    pages = [seen.path for seen in anonymous.requests if "/tags/list" in seen.path]
    assert pages == ["/v2/tags/fedora/tags/list?n=50", "/v2/tags/fedora/tags/list?last=t048&n=50",
                     "/v2/tags/fedora/tags/list?last=t098&n=50"]


def test_list_tags_of_a_missing_repository(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    with pytest.raises(ImageNotFoundError):
        client(anonymous, tls_dir, "missing/repo").list_tags()


# --- uploads -----------------------------------------------------------------------------------------------------


def test_streaming_upload_in_one_chunked_patch_then_a_put(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    writer = client(anonymous, tls_dir, "stream/blob", push=True)
    chunk = os.urandom(1 << 18)
    digest = sha256(chunk * 8)
    assert writer.upload_blob((chunk for _ in range(8)), digest) == 8 << 18
    assert writer.blob_size(digest) == 8 << 18
    writes = [(a.method, a.status) for a in anonymous.answered("stream/blob") if "/uploads/" in a.path]
    assert writes == [("POST", 202), ("PATCH", 202), ("PUT", 201)]
    assert anonymous.blobs[digest] == chunk * 8


def test_upload_of_reused_views_and_of_a_known_size(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    """upload_blob may be handed one buffer over and over (the read-ahead pump does so)."""
    writer = client(anonymous, tls_dir, "views/blob", push=True)
    pieces = [os.urandom(1 << 14) for _ in range(5)]
    buffer = bytearray(1 << 14)

    def views() -> Iterator[memoryview]:
        for piece in pieces:
            buffer[:] = piece
            yield memoryview(buffer)

    digest = sha256(b"".join(pieces))
    assert writer.upload_blob(views(), digest, size=5 << 14) == 5 << 14
    assert anonymous.blobs[digest] == b"".join(pieces)


def test_failure_midway_through_a_streamed_upload_cancels_it(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    writer = client(anonymous, tls_dir, "midway/blob", push=True)

    def failing() -> Iterator[bytes]:
        yield b"a" * (1 << 16)
        yield b"b" * (1 << 16)
        raise OSError("source went away")

    with pytest.raises(OSError, match="source went away"):
        writer.upload_blob(failing(), "sha256:" + "1" * 64)
    methods = [a.method for a in anonymous.answered("midway/blob") if "/uploads/" in a.path]
    assert "DELETE" in methods and "PUT" not in methods
    assert anonymous.uploads == {}


def test_wrong_digest_upload_is_refused_and_cancelled(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    writer = client(anonymous, tls_dir, "baddigest/blob", push=True)
    with pytest.raises(RegistryError) as info:
        writer.upload_blob(iter([b"some bytes"]), "sha256:" + "0" * 64)
    assert info.value.status == 400 and info.value.diagnostics[0]["code"] == "DIGEST_INVALID"
    assert anonymous.answered("baddigest/blob")[-1].method == "DELETE" and anonymous.uploads == {}


@pytest.mark.parametrize("count", [4, 6])
def test_a_source_that_disagrees_with_its_size_fails_at_once(anonymous: InProcessRegistry, tls_dir: Path,
                                                             count: int) -> None:
    writer = client(anonymous, tls_dir, "badsize/blob", push=True)
    chunk = os.urandom(1 << 16)
    with pytest.raises(LabcheckError, match="than its size"):
        writer.upload_blob((chunk for _ in range(count)), "sha256:" + "2" * 64, size=5 << 16)
    methods = [a.method for a in anonymous.answered("badsize/blob") if "/uploads/" in a.path]
    assert "DELETE" in methods and "PUT" not in methods


def test_cross_repository_mount(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    manifest = seed(anonymous, "mount-a/fedora")
    writer = client(anonymous, tls_dir, "mount-b/fedora", push=True)
    for blob in blobs_of(manifest):
        assert writer.mount_blob(blob.digest, "mount-a/fedora")
    assert not writer.mount_blob(sha256(b"absent"), "mount-a/fedora")  # a 202 upload, cancelled
    assert [(a.method, a.status) for a in anonymous.answered("mount-b/fedora")] == [
        ("POST", 201), ("POST", 201), ("POST", 201), ("POST", 202), ("DELETE", 204)]


def test_a_manifest_naming_an_absent_blob_is_refused(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    manifest, _, _ = image_blobs(seed="orphan")
    with pytest.raises(RegistryError) as info:
        client(anonymous, tls_dir, "orphan/fedora", push=True).put_manifest("1", manifest, V2S2)
    assert info.value.status == 400 and info.value.diagnostics[0]["code"] == "MANIFEST_BLOB_UNKNOWN"


def test_delete_manifest_removes_its_tags(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    seed(anonymous)
    writer = client(anonymous, tls_dir, push=True)
    digest = writer.manifest_digest("38")
    assert digest
    writer.delete_manifest(digest)
    assert writer.manifest_digest("38") is None
    writer.delete_manifest(digest)  # a 404 is no error: already gone


# --- retries and faults -----------------------------------------------------------------------------------------


def test_503_with_retry_after_is_retried_after_the_delay(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    seed(anonymous)
    anonymous.fail_path, anonymous.fail_times, anonymous.retry_after = "/manifests/38", 1, "1"
    started = time.monotonic()
    raw, _ = client(anonymous, tls_dir, retry_times=3, retry_delay=0.01).get_manifest("38")
    assert json.loads(raw)["schemaVersion"] == 2 and time.monotonic() - started >= 1.0
    assert anonymous.count(lambda seen: seen.path.endswith("/manifests/38")) == 2


@pytest.mark.parametrize("status", [502, 503, 504])
def test_temporary_statuses_are_retried_up_to_retry_times(anonymous: InProcessRegistry, tls_dir: Path,
                                                          status: int) -> None:
    anonymous.fail_path, anonymous.fail_times, anonymous.fail_status = "/manifests/38", 10, status
    with pytest.raises(RegistryError) as info:
        client(anonymous, tls_dir, retry_times=2, retry_delay=0.01).get_manifest("38")
    assert info.value.status == status and info.value.temporary
    assert info.value.diagnostics == [{"code": "UNAVAILABLE", "message": "injected fault"}]
    assert anonymous.count(lambda seen: seen.path.endswith("/manifests/38")) == 3


def test_too_many_requests_is_retried_five_times_whatever_retry_times_says(anonymous: InProcessRegistry,
                                                                            tls_dir: Path) -> None:
    # containers/image's own 429 loop: five more tries, apart from --retry-times.
    anonymous.fail_path, anonymous.fail_times, anonymous.fail_status = "/manifests/38", 10, 429
    with pytest.raises(RegistryError) as info:
        client(anonymous, tls_dir, retry_times=2, retry_delay=0.01).get_manifest("38")
    assert info.value.status == 429 and info.value.temporary
    assert anonymous.count(lambda seen: seen.path.endswith("/manifests/38")) == 6


@pytest.mark.parametrize("status", [401, 403, 404])
def test_client_errors_are_never_retried(anonymous: InProcessRegistry, tls_dir: Path, status: int) -> None:
    anonymous.fail_path, anonymous.fail_times, anonymous.fail_status = "/manifests/38", 1, status
    expected = {401: AuthenticationError, 403: AuthenticationError, 404: ImageNotFoundError}[status]
    with pytest.raises(expected):
        client(anonymous, tls_dir, retry_times=3, retry_delay=0.01).get_manifest("38")
    assert anonymous.count(lambda seen: seen.path.endswith("/manifests/38")) == 1


def test_a_dropped_connection_mid_blob_is_a_clear_temporary_error(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    layer = blobs_of(seed(anonymous, layer_size=1 << 18))[1]
    anonymous.drop_blobs = True
    for read in ("read", "readinto"):
        reader, size = client(anonymous, tls_dir).get_blob(layer.digest)
        assert size == layer.size
        buffer = bytearray(1 << 14)
        with pytest.raises(RegistryError) as info, reader:
            while reader.read(1 << 14) if read == "read" else reader.readinto(buffer):  # type: ignore[attr-defined]
                pass
        assert info.value.temporary and "connection lost" in info.value.message


def test_readinto_reads_a_whole_blob(anonymous: InProcessRegistry, tls_dir: Path) -> None:
    layer = blobs_of(seed(anonymous, layer_size=1 << 18))[1]
    reader, size = client(anonymous, tls_dir).get_blob(layer.digest)
    digest, buffer, total = hashlib.sha256(), bytearray(1 << 14), 0
    with reader:
        while n := reader.readinto(buffer):  # type: ignore[attr-defined]
            digest.update(memoryview(buffer)[:n])
            total += n
    assert total == size and "sha256:" + digest.hexdigest() == layer.digest


def test_connection_refused_is_retried_then_reported(tls_dir: Path) -> None:
    refused = RegistryClient(f"127.0.0.1:{free_port()}", "fedora", SideOptions(retry_times=2), retry_delay=0.05)
    started = time.monotonic()
    with pytest.raises(RegistryError) as info:
        refused.get_manifest("38")
    assert "connection refused" in info.value.message and info.value.temporary
    assert 0.05 <= time.monotonic() - started < 5


def test_credentials_never_leak_from_errors_or_logs(basic: InProcessRegistry, token: InProcessRegistry,
                                                    tls_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    import base64

    caplog.set_level(logging.DEBUG)
    password = "leak-" + secrets.token_hex(16)
    creds = Credentials("someone", password)
    encoded = base64.b64encode(f"someone:{password}".encode()).decode()
    clients = [client(basic, tls_dir, creds=creds), client(token, tls_dir, "seeded/fedora", creds=creds),
               RegistryClient(f"127.0.0.1:{free_port()}", "fedora", SideOptions(creds=creds))]
    errors: list[BaseException] = []
    for each in clients:
        with pytest.raises(RegistryError) as info:
            each.get_manifest("38")
        errors.append(info.value)
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_BUNDLE)
    with pytest.raises(RegistryError) as info:  # TLS failure
        RegistryClient(basic.address, "fedora", SideOptions(creds=creds)).get_manifest("38")
    errors.append(info.value)
    for error in errors:
        assert_secret_absent(error, password, encoded)
        assert error.__context__ is None and error.__cause__ is None
    for each in clients:
        assert password not in repr(each)
    assert password not in caplog.text and encoded not in caplog.text
