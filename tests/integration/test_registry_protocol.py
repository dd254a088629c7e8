"""docker:// against real registries: the lab world's, a token-auth distribution registry with a
token issuer of our own, a plain-HTTP one, and a fault-injecting proxy for what they cannot do.
The fast tier asks the same of the in-process registry: tests/unit/test_registry_client.py."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import time
import traceback
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests
import yaml

from labcheck.engine.copy import copy_between
from labcheck.engine.base.errors import AuthenticationError, ImageNotFoundError, RegistryError
from labcheck.engine.base.options import Credentials, SideOptions
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.engine.registry.client import RegistryClient
from labcheck.engine.transports import open_destination, open_source
from labcheck.engine.base.interfaces import BlobInfo
from labcheck.errors import LabcheckError
from labcheck.labenv.components import registry_config
from labcheck.labenv.process import Daemon, free_port
from labcheck.labenv.tls import SYSTEM_CA_BUNDLES
from labcheck.labenv.world import LabWorld
from tests.servers.fault_proxy import FaultProxy
from tests.servers.token_issuer import ISSUER, SERVICE, TokenIssuer

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

SYSTEM_BUNDLE = next(p for p in SYSTEM_CA_BUNDLES if os.path.exists(p))
TOKEN_USER = "token-user"


# --- helpers ----------------------------------------------------------------------------------------


def lab_opts(world: LabWorld, **kwargs) -> SideOptions:
    return SideOptions(cert_dir=str(world.tls_dir / "cert-dir"), **kwargs)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def manifest_blobs(raw: bytes) -> list[BlobInfo]:
    manifest = json.loads(raw)
    return [BlobInfo(d["digest"], d["size"], d["mediaType"]) for d in [manifest["config"], *manifest["layers"]]]


def push_image(src: RegistryClient, dst: RegistryClient, tag: str, *, dst_tags: list[str] | None = None) -> bytes:
    """Push src's `tag` to dst with the client's own calls (HEAD, upload, manifest PUT)."""
    raw, media_type = src.get_manifest(tag)
    for blob in manifest_blobs(raw):
        if dst.blob_size(blob.digest) is None:
            reader, _ = src.get_blob(blob.digest)
            with reader:
                dst.upload_blob(iter(lambda: reader.read(1 << 20), b""), blob.digest)
    for name in dst_tags or [tag]:
        dst.put_manifest(name, raw, media_type)
    return raw


def access_log(world: LabWorld, daemon: Daemon, repository: str) -> list[tuple[str, str, int]]:
    """(method, uri, status) of the registry's access log lines about one repository."""
    pattern = re.compile(r'"(\w+) (\S+) HTTP/[\d.]+" (\d{3}) ')
    rows = []
    for line in daemon.log_file.read_text(errors="replace").splitlines():
        match = pattern.search(line)
        if match and f"/v2/{repository}/" in match.group(2):
            rows.append((match.group(1), match.group(2), int(match.group(3))))
    return rows


def blob_writes(rows: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return [r for r in rows if "/blobs/uploads/" in r[1] and r[0] in ("POST", "PATCH", "PUT")]


def assert_secret_absent(exc: BaseException, *secrets_: str) -> None:
    __tracebackhide__ = True
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for secret in secrets_:
        for text in texts:
            assert secret not in text


def wait_for_registry(url: str, ca: Path, daemon: Daemon) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/v2/", verify=str(ca), timeout=1).status_code in (200, 401):
                return
        except requests.RequestException:
            time.sleep(0.1)
    pytest.fail(f"registry at {url} did not start: {daemon.log_tail(5)}")


@pytest.fixture
def source(lab_world: LabWorld) -> Iterator[RegistryClient]:
    client = lab_world.registry_client(lab_world.source_registry, "fedora")
    yield client
    client.close()


# --- ping, Basic auth (the lab's htpasswd destination) ----------------------------------------------


def test_ping_gets_the_basic_challenge_and_the_credentials_work(lab_world: LabWorld, source: RegistryClient) -> None:
    client = lab_world.registry_client(lab_world.dest_registry, unique("basic/fedora"), push=True)
    assert client.base_url() == f"https://{lab_world.dest_registry}"
    assert client._challenge is not None and client._challenge.scheme == "basic"
    push_image(source, client, "38")
    assert client.list_tags() == ["38"]


def test_wrong_password_is_an_authentication_error_without_the_password(lab_world: LabWorld) -> None:
    password = "wrong-" + secrets.token_hex(12)
    creds = Credentials(lab_world.dest_credentials().username, password)
    client = RegistryClient(lab_world.dest_registry, "fedora", lab_opts(lab_world, creds=creds))
    with pytest.raises(AuthenticationError) as info:
        client.get_manifest("38")
    assert info.value.status == 401 and not info.value.temporary
    assert info.value.message == f"reading manifest 38 in {lab_world.dest_registry}/fedora: unauthorized: authentication required"
    assert "refused the credentials" in (info.value.hint or "")
    assert_secret_absent(info.value, password)


def test_anonymous_access_to_the_destination_asks_for_credentials(lab_world: LabWorld) -> None:
    client = RegistryClient(lab_world.dest_registry, "fedora", lab_opts(lab_world, no_creds=True))
    with pytest.raises(AuthenticationError) as info:
        client.manifest_digest("38")
    assert info.value.status == 401 and "--dest-creds" in (info.value.hint or "")


def test_credentials_come_from_registry_auth_file(lab_world: LabWorld, tmp_path: Path, monkeypatch) -> None:
    creds = lab_world.dest_credentials()
    import base64

    auth = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {lab_world.dest_registry: {"auth": auth}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(authfile))
    client = RegistryClient(lab_world.dest_registry, "nothing-here", lab_opts(lab_world))
    assert client.manifest_digest("38") is None  # authenticated: a 404, not a 401


# --- Bearer tokens: a distribution registry with `auth: token` and our issuer ------------------------


class TokenWorld:
    def __init__(self, registry: str, issuer: TokenIssuer, password: str, world: LabWorld) -> None:
        self.registry, self.issuer, self.password, self.world = registry, issuer, password, world

    def client(self, repository: str, *, creds: Credentials | None = None, push: bool = False, **opts) -> RegistryClient:
        return RegistryClient(self.registry, repository, lab_opts(self.world, creds=creds, **opts), push=push)

    @property
    def creds(self) -> Credentials:
        return Credentials(TOKEN_USER, self.password)


@pytest.fixture(scope="module")
def token_world(lab_world: LabWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenWorld]:
    root = tmp_path_factory.mktemp("token-registry")
    password = secrets.token_urlsafe(18)
    with TokenIssuer(root, lab_world.tls_dir, users={TOKEN_USER: password}) as issuer:
        port = free_port()
        config = registry_config(root, port=port, tls_dir=lab_world.tls_dir, htpasswd=None)
        config["auth"] = {"token": {"realm": issuer.realm, "service": SERVICE, "issuer": ISSUER,
                                    "rootcertbundle": str(issuer.cert_path)}}
        (root / "data").mkdir(exist_ok=True)
        (root / "config.yml").write_text(yaml.safe_dump(config))
        daemon = Daemon("token-registry", root / "run")
        daemon.start(["docker-registry", "serve", str(root / "config.yml")])
        try:
            wait_for_registry(f"https://127.0.0.1:{port}", lab_world.tls_dir / "ca.crt", daemon)
            token_world = TokenWorld(f"127.0.0.1:{port}", issuer, password, lab_world)
            seed = token_world.client("seeded/fedora", creds=token_world.creds, push=True)
            source = lab_world.registry_client(lab_world.source_registry, "fedora")
            push_image(source, seed, "38")
            yield token_world
        finally:
            daemon.stop()


@pytest.fixture
def issuer(token_world: TokenWorld) -> Iterator[TokenIssuer]:
    issuer = token_world.issuer
    issuer.token_requests.clear()
    yield issuer
    issuer.anonymous_pull, issuer.token_field, issuer.expires_in, issuer.narrow_tokens = True, "token", 300, 0


def test_anonymous_pull_gets_a_pull_token(token_world: TokenWorld, issuer: TokenIssuer) -> None:
    client = token_world.client("seeded/fedora")
    raw, media_type = client.get_manifest("38")
    assert media_type == "application/vnd.docker.distribution.manifest.v2+json"
    reader, size = client.get_blob(manifest_blobs(raw)[0].digest)
    with reader:
        assert len(reader.read()) == size
    assert client._challenge is not None and client._challenge.params["realm"] == issuer.realm
    assert issuer.token_requests == [{"scopes": ["repository:seeded/fedora:pull"], "user": None, "service": SERVICE}]


def test_push_with_credentials_gets_a_push_token(token_world: TokenWorld, issuer: TokenIssuer,
                                                 source: RegistryClient) -> None:
    repository = unique("pushed/fedora")
    client = token_world.client(repository, creds=token_world.creds, push=True)
    push_image(source, client, "38")
    assert client.list_tags() == ["38"]
    assert len(issuer.token_requests) == 1  # one token, cached for every request of the push
    assert issuer.token_requests[0]["scopes"] == [f"repository:{repository}:pull,push"]
    assert issuer.token_requests[0]["user"] == TOKEN_USER


def test_anonymous_push_is_refused_by_the_registry(token_world: TokenWorld, issuer: TokenIssuer) -> None:
    client = token_world.client(unique("anon/fedora"), push=True)
    with pytest.raises(AuthenticationError) as info:
        client.upload_blob(iter([b"x"]), "sha256:" + hashlib.sha256(b"x").hexdigest())
    assert info.value.status == 401
    assert info.value.diagnostics == [{"code": "insufficient_scope"}]
    assert len(issuer.token_requests) == 2  # the first token, then one fresh one: no loop


def test_token_issuer_refusing_wrong_credentials(token_world: TokenWorld, issuer: TokenIssuer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    password = "wrong-" + secrets.token_hex(12)
    client = token_world.client("seeded/fedora", creds=Credentials(TOKEN_USER, password))
    with pytest.raises(AuthenticationError) as info:
        client.get_manifest("38")
    assert info.value.status == 401
    assert f"the token server refused the credentials of user '{TOKEN_USER}'" in info.value.message
    assert info.value.url == issuer.realm
    assert_secret_absent(info.value, password)
    assert password not in caplog.text
    assert len(issuer.token_requests) == 1


def test_token_issuer_refusing_anonymous_access(token_world: TokenWorld, issuer: TokenIssuer) -> None:
    issuer.anonymous_pull = False
    with pytest.raises(AuthenticationError) as info:
        token_world.client("seeded/fedora").get_manifest("38")
    assert "refused anonymous access" in info.value.message and "--creds" in (info.value.hint or "")


def test_access_token_instead_of_token(token_world: TokenWorld, issuer: TokenIssuer) -> None:
    issuer.token_field = "access_token"
    issuer.expires_in = None  # the spec's default lifetime (60s) applies
    client = token_world.client("seeded/fedora")
    client.get_manifest("38")
    client.manifest_digest("38")
    assert len(issuer.token_requests) == 1


def test_expired_token_is_fetched_again(token_world: TokenWorld, issuer: TokenIssuer) -> None:
    issuer.expires_in = 1
    client = token_world.client("seeded/fedora")
    client.manifest_digest("38")
    client.manifest_digest("38")
    assert len(issuer.token_requests) == 1  # still fresh
    time.sleep(1.1)
    client.manifest_digest("38")
    assert len(issuer.token_requests) == 2


def test_insufficient_scope_gets_one_retry_with_a_fresh_token(token_world: TokenWorld, issuer: TokenIssuer) -> None:
    issuer.narrow_tokens = 1
    client = token_world.client("seeded/fedora")
    assert client.manifest_digest("38")
    assert len(issuer.token_requests) == 2

    issuer.token_requests.clear()
    issuer.narrow_tokens = 10
    with pytest.raises(AuthenticationError) as info:
        token_world.client("seeded/fedora").manifest_digest("38")
    assert info.value.diagnostics == [{"code": "insufficient_scope"}]
    assert len(issuer.token_requests) == 2


def test_registry_token_is_sent_as_given(token_world: TokenWorld, issuer: TokenIssuer) -> None:
    token = issuer.issue("", [{"type": "repository", "name": "seeded/fedora", "actions": ["pull"]}])
    client = token_world.client("seeded/fedora", registry_token=token)
    assert client.manifest_digest("38")
    assert issuer.token_requests == []


# --- TLS trust ---------------------------------------------------------------------------------------


def test_ssl_cert_file_is_honoured_and_requests_ca_bundle_is_not(lab_world: LabWorld, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(lab_world.ca_bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_BUNDLE)
    monkeypatch.setenv("CURL_CA_BUNDLE", SYSTEM_BUNDLE)
    assert RegistryClient(lab_world.source_registry, "fedora").manifest_digest("38")


def test_untrusted_registry_is_a_clear_tls_error(lab_world: LabWorld, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_BUNDLE)
    # REQUESTS_CA_BUNDLE naming the lab CA must not make it trusted either: only skopeo's sources count.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(lab_world.tls_dir / "ca.crt"))
    with pytest.raises(RegistryError) as info:
        RegistryClient(lab_world.source_registry, "fedora").get_manifest("38")
    assert info.value.message == (f"pinging container registry {lab_world.source_registry}: "
                                  f'Get "https://{lab_world.source_registry}/v2/": x509: certificate signed by unknown authority')
    assert "SSL_CERT_FILE" in (info.value.hint or "") and info.value.status is None


def test_certs_d_directory_of_the_registry_is_trusted(lab_world: LabWorld, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_BUNDLE)
    base = Path("/etc/containers/certs.d")
    created_base = not base.exists()
    host_dir = base / lab_world.source_registry
    assert not host_dir.exists()
    try:
        host_dir.mkdir(parents=True)
        shutil.copy(lab_world.tls_dir / "ca.crt", host_dir / "ca.crt")
        assert RegistryClient(lab_world.source_registry, "fedora").manifest_digest("38")
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)
        if created_base:
            shutil.rmtree(base, ignore_errors=True)


def test_tls_verify_false_works_without_trust(lab_world: LabWorld, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_BUNDLE)
    client = RegistryClient(lab_world.source_registry, "fedora", SideOptions(tls_verify=False))
    assert client.manifest_digest("38")
    assert client.base_url().startswith("https://")


@pytest.fixture(scope="module")
def plain_http_registry(lab_world: LabWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("plain-registry")
    port = free_port()
    config = registry_config(root, port=port, tls_dir=lab_world.tls_dir, htpasswd=None)
    del config["http"]["tls"]
    (root / "data").mkdir(exist_ok=True)
    (root / "config.yml").write_text(yaml.safe_dump(config))
    daemon = Daemon("plain-registry", root / "run")
    daemon.start(["docker-registry", "serve", str(root / "config.yml")])
    try:
        wait_for_registry(f"http://127.0.0.1:{port}", lab_world.tls_dir / "ca.crt", daemon)
        yield f"127.0.0.1:{port}"
    finally:
        daemon.stop()


def test_plain_http_registry_needs_tls_verify_false(plain_http_registry: str, source: RegistryClient) -> None:
    client = RegistryClient(plain_http_registry, "fedora", SideOptions(tls_verify=False), push=True)
    push_image(source, client, "38")
    assert client.base_url() == f"http://{plain_http_registry}"
    with pytest.raises(RegistryError) as info:
        RegistryClient(plain_http_registry, "fedora").manifest_digest("38")
    assert info.value.message.endswith(": http: server gave HTTP response to HTTPS client")  # Go's words


def test_registries_conf_insecure_and_location(lab_world: LabWorld, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_BUNDLE)
    conf = tmp_path / "registries.conf"
    conf.write_text(
        f'[[registry]]\nlocation = "{lab_world.source_registry}"\ninsecure = true\n\n'
        f'[[registry]]\nprefix = "mirror.example/fedora"\nlocation = "{lab_world.source_registry}/fedora"\n'
        "insecure = true\n"
    )
    opts = SideOptions(registries_conf=str(conf))
    for name in (f"{lab_world.source_registry}/fedora:38", "mirror.example/fedora:38"):
        src = open_source(parse_image_reference(f"docker://{name}"), opts)
        try:
            raw, _ = src.get_manifest()
            assert json.loads(raw)["schemaVersion"] == 2
        finally:
            src.close()
    # Without the entry the same registry is not trusted (the source reads the manifest as it opens).
    with pytest.raises(RegistryError):
        open_source(parse_image_reference(f"docker://{lab_world.source_registry}/fedora:38"), SideOptions())


# --- tags ----------------------------------------------------------------------------------------------


def test_list_tags_with_many_tags_and_link_pagination(lab_world: LabWorld, source: RegistryClient) -> None:
    repository = unique("tags/fedora")
    client = lab_world.registry_client(lab_world.source_registry, repository, push=True)
    names = [f"t{i:03d}" for i in range(120)]
    push_image(source, client, "38", dst_tags=names)
    assert sorted(client.list_tags(page_size=50)) == names  # distribution 2.8 answers in one page

    with FaultProxy(f"https://{lab_world.source_registry}", ca_file=lab_world.tls_dir / "ca.crt",
                    tls_dir=lab_world.tls_dir) as proxy:
        proxy.paginate_tags = True
        paged = lab_world.registry_client(proxy.address, repository)
        assert paged.list_tags(page_size=50) == names
        pages = [seen.path for seen in proxy.requests if "/tags/list" in seen.path]
        assert pages == [f"/v2/{repository}/tags/list?n=50", f"/v2/{repository}/tags/list?last=t049&n=50",
                         f"/v2/{repository}/tags/list?last=t099&n=50"]


def test_list_tags_of_a_missing_repository(source: RegistryClient, lab_world: LabWorld) -> None:
    with pytest.raises(ImageNotFoundError):
        lab_world.registry_client(lab_world.source_registry, unique("missing/repo")).list_tags()


# --- push: reuse, mount, streaming upload, manifest PUT -------------------------------------------------


def test_push_uploads_once_then_reuses_every_blob(lab_world: LabWorld) -> None:
    repository = unique("push/fedora")
    dest_ref = parse_image_reference(f"docker://{lab_world.dest_registry}/{repository}:38")
    src_ref = parse_image_reference(f"docker://{lab_world.source_registry}/fedora:38")
    dest_opts = lab_opts(lab_world, creds=lab_world.dest_credentials())

    def copy() -> None:
        source, destination = open_source(src_ref, lab_opts(lab_world)), open_destination(dest_ref, dest_opts)
        try:
            copy_between(source, destination)
        finally:
            source.close()
            destination.close()

    copy()
    first = access_log(lab_world, lab_world.dest, repository)
    writes = blob_writes(first)
    assert [m for m, _, _ in writes].count("POST") == 2  # config and the one layer
    assert all(status in (201, 202, 204) for _, _, status in writes)
    assert any(m == "PUT" and "digest=sha256" in uri for m, uri, _ in writes)
    manifest_puts = [r for r in first if r[0] == "PUT" and "/manifests/" in r[1]]
    assert manifest_puts == [("PUT", f"/v2/{repository}/manifests/38", 201)]

    copy()
    second = access_log(lab_world, lab_world.dest, repository)[len(first):]
    assert blob_writes(second) == []
    assert {m for m, uri, _ in second if "/blobs/" in uri} == {"HEAD"}

    dest = lab_world.registry_client(lab_world.dest_registry, repository)
    raw, media_type = dest.get_manifest("38")
    src_raw, src_type = lab_world.registry_client(lab_world.source_registry, "fedora").get_manifest("38")
    assert (raw, media_type) == (src_raw, src_type)


def test_cross_repository_mount_on_the_same_registry(lab_world: LabWorld, source: RegistryClient) -> None:
    first = unique("mount-a/fedora")
    client = lab_world.registry_client(lab_world.dest_registry, first, push=True)
    raw = push_image(source, client, "38")
    second = unique("mount-b/fedora")
    destination = open_destination(parse_image_reference(f"docker://{lab_world.dest_registry}/{second}:38"),
                                   lab_opts(lab_world, creds=lab_world.dest_credentials()))
    try:
        for blob in manifest_blobs(raw):
            assert destination.try_reusing_blob(blob, source_repository=f"{lab_world.dest_registry}/{first}")
    finally:
        destination.close()
    rows = access_log(lab_world, lab_world.dest, second)
    mounts = [r for r in rows if r[0] == "POST"]
    assert len(mounts) == 2 and all("mount=sha256" in uri and status == 201 for _, uri, status in mounts)
    assert not [r for r in rows if r[0] in ("PATCH", "PUT")]


def test_streaming_upload_in_one_chunked_patch(lab_world: LabWorld) -> None:
    repository = unique("stream/blob")
    client = lab_world.registry_client(lab_world.dest_registry, repository, push=True)
    chunk = os.urandom(1 << 20)
    count = 20  # streamed in one PATCH (chunked encoding), never gathered in memory
    digest = "sha256:" + hashlib.sha256(chunk * count).hexdigest()
    assert client.upload_blob((chunk for _ in range(count)), digest) == count << 20
    assert client.blob_size(digest) == count << 20
    patches = [r for r in access_log(lab_world, lab_world.dest, repository) if r[0] == "PATCH"]
    assert len(patches) == 1


def test_upload_of_reused_views(lab_world: LabWorld) -> None:
    """upload_blob may be handed one buffer over and over (the read-ahead pump does so)."""
    repository = unique("views/blob")
    client = lab_world.registry_client(lab_world.dest_registry, repository, push=True)
    pieces = [os.urandom(1 << 16) for _ in range(5)]
    buffer = bytearray(1 << 16)

    def views() -> Iterator[memoryview]:
        for piece in pieces:
            buffer[:] = piece
            yield memoryview(buffer)

    digest = "sha256:" + hashlib.sha256(b"".join(pieces)).hexdigest()
    assert client.upload_blob(views(), digest) == 5 << 16
    assert client.blob_size(digest) == 5 << 16


def test_failure_midway_through_a_streamed_upload_cancels_it(lab_world: LabWorld) -> None:
    repository = unique("midway/blob")
    client = lab_world.registry_client(lab_world.dest_registry, repository, push=True)

    def failing() -> Iterator[bytes]:
        yield b"a" * (1 << 20)
        yield b"b" * (1 << 20)
        raise OSError("source went away")

    with pytest.raises(OSError, match="source went away"):
        client.upload_blob(failing(), "sha256:" + "1" * 64)
    rows = access_log(lab_world, lab_world.dest, repository)
    # the aborted PATCH may be logged after the DELETE that cancelled its session
    assert "DELETE" in [r[0] for r in rows if "/blobs/uploads/" in r[1]]
    assert not [r for r in rows if r[0] == "PUT"]


def test_wrong_digest_upload_is_refused_and_cancelled(lab_world: LabWorld) -> None:
    repository = unique("baddigest/blob")
    client = lab_world.registry_client(lab_world.dest_registry, repository, push=True)
    with pytest.raises(RegistryError) as info:
        client.upload_blob(iter([b"some bytes"]), "sha256:" + "0" * 64)
    assert info.value.status == 400 and info.value.diagnostics[0]["code"] == "DIGEST_INVALID"
    assert [r[0] for r in access_log(lab_world, lab_world.dest, repository)][-1] == "DELETE"


def test_source_verifies_a_requested_digest(lab_world: LabWorld, source: RegistryClient) -> None:
    digest = source.manifest_digest("38")
    src = open_source(parse_image_reference(f"docker://{lab_world.source_registry}/fedora@{digest}"), lab_opts(lab_world))
    try:
        raw, _ = src.get_manifest()
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
        assert sorted(src.list_tags()) == ["38", "39", "40", "latest"]
    finally:
        src.close()


# --- retries and faults -----------------------------------------------------------------------------------


@pytest.fixture
def proxy(lab_world: LabWorld) -> Iterator[FaultProxy]:
    with FaultProxy(f"https://{lab_world.source_registry}", ca_file=lab_world.tls_dir / "ca.crt",
                    tls_dir=lab_world.tls_dir) as proxy:
        yield proxy


def proxied(world: LabWorld, proxy: FaultProxy, *, retry_times: int) -> RegistryClient:
    return RegistryClient(proxy.address, "fedora", lab_opts(world, retry_times=retry_times), retry_delay=0.05)


def manifest_requests(proxy: FaultProxy, reference: str = "38") -> int:
    return proxy.count(lambda seen: seen.path.endswith(f"/manifests/{reference}"))


def test_503_with_retry_after_is_retried_after_the_delay(lab_world: LabWorld, proxy: FaultProxy) -> None:
    proxy.fail_path, proxy.fail_times, proxy.retry_after = "/manifests/38", 2, "1"
    client = proxied(lab_world, proxy, retry_times=3)
    started = time.monotonic()
    raw, _ = client.get_manifest("38")
    assert json.loads(raw)["schemaVersion"] == 2
    assert time.monotonic() - started >= 2.0
    assert manifest_requests(proxy) == 3


@pytest.mark.parametrize("status", [502, 503, 504])
def test_temporary_statuses_are_retried_up_to_retry_times(lab_world: LabWorld, proxy: FaultProxy, status: int) -> None:
    proxy.fail_path, proxy.fail_times, proxy.fail_status = "/manifests/38", 10, status
    with pytest.raises(RegistryError) as info:
        proxied(lab_world, proxy, retry_times=2).get_manifest("38")
    assert info.value.status == status and info.value.temporary
    assert info.value.diagnostics == [{"code": "UNAVAILABLE", "message": "injected fault"}]
    assert manifest_requests(proxy) == 3


def test_no_retry_by_default(lab_world: LabWorld, proxy: FaultProxy) -> None:
    proxy.fail_path, proxy.fail_times = "/manifests/38", 1
    with pytest.raises(RegistryError):
        proxied(lab_world, proxy, retry_times=0).get_manifest("38")
    assert manifest_requests(proxy) == 1


@pytest.mark.parametrize("status", [401, 403, 404])
def test_client_errors_are_never_retried(lab_world: LabWorld, proxy: FaultProxy, status: int) -> None:
    proxy.fail_path, proxy.fail_times, proxy.fail_status = "/manifests/38", 1, status
    expected = {401: AuthenticationError, 403: AuthenticationError, 404: ImageNotFoundError}[status]
    with pytest.raises(expected) as info:
        proxied(lab_world, proxy, retry_times=3).get_manifest("38")
    assert manifest_requests(proxy) == 1
    if isinstance(info.value, RegistryError):
        assert not info.value.temporary


def test_dropped_connection_mid_blob_is_a_clear_error(lab_world: LabWorld, proxy: FaultProxy,
                                                     source: RegistryClient) -> None:
    raw, _ = source.get_manifest("38")
    layer = manifest_blobs(raw)[1]
    proxy.drop_blobs = True
    client = proxied(lab_world, proxy, retry_times=0)
    started = time.monotonic()
    reader, size = client.get_blob(layer.digest)
    assert size == layer.size
    with pytest.raises(RegistryError) as info, reader:
        while reader.read(1 << 16):
            pass
    assert time.monotonic() - started < 10
    assert info.value.temporary and "connection lost" in info.value.message


def test_dropped_connection_mid_blob_through_readinto(lab_world: LabWorld, proxy: FaultProxy,
                                                       source: RegistryClient) -> None:
    raw, _ = source.get_manifest("38")
    layer = manifest_blobs(raw)[1]
    proxy.drop_blobs = True
    reader, _ = proxied(lab_world, proxy, retry_times=0).get_blob(layer.digest)
    buffer = bytearray(1 << 16)
    with pytest.raises(RegistryError) as info, reader:
        while reader.readinto(buffer):  # type: ignore[attr-defined]
            pass
    assert info.value.temporary and "connection lost" in info.value.message
    assert info.value.__context__ is None


def test_readinto_reads_a_whole_blob(lab_world: LabWorld, source: RegistryClient) -> None:
    raw, _ = source.get_manifest("38")
    layer = manifest_blobs(raw)[1]
    reader, size = source.get_blob(layer.digest)
    digest, buffer, total = hashlib.sha256(), bytearray(1 << 16), 0
    with reader:
        while n := reader.readinto(buffer):  # type: ignore[attr-defined]
            digest.update(memoryview(buffer)[:n])
            total += n
    assert total == size and "sha256:" + digest.hexdigest() == layer.digest


# --- secrets never leak ---------------------------------------------------------------------------------


def test_credentials_never_leak_from_errors_or_logs(lab_world: LabWorld, token_world: TokenWorld,
                                                    issuer: TokenIssuer, monkeypatch, caplog) -> None:
    import base64

    caplog.set_level(logging.DEBUG)
    password = "leak-" + secrets.token_hex(16)
    creds = Credentials("someone", password)
    encoded = base64.b64encode(f"someone:{password}".encode()).decode()
    clients = [
        RegistryClient(lab_world.dest_registry, "fedora", lab_opts(lab_world, creds=creds)),  # wrong password
        token_world.client("seeded/fedora", creds=creds),  # the token server refuses
        RegistryClient(f"127.0.0.1:{free_port()}", "fedora", lab_opts(lab_world, creds=creds)),  # refused
    ]
    errors: list[BaseException] = []
    for client in clients:
        with pytest.raises(RegistryError) as info:
            client.get_manifest("38")
        errors.append(info.value)
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_BUNDLE)
    with pytest.raises(RegistryError) as info:  # TLS failure
        RegistryClient(lab_world.dest_registry, "fedora", SideOptions(creds=creds)).get_manifest("38")
    errors.append(info.value)
    for error in errors:
        assert_secret_absent(error, password, encoded)
        assert error.__context__ is None and error.__cause__ is None
    for client in clients:
        assert password not in repr(client)
    assert password not in caplog.text and encoded not in caplog.text


# --- end to end: labcheck copy, checked with the real skopeo ---------------------------------------------


def run_on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    """Run argv with stdout and stderr on a pseudo-terminal; its whole output, \r\n as \n."""
    import pty

    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env)
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(controller)
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def test_labcheck_copy_registry_to_registry_then_again(lab_world: LabWorld, in_world) -> None:
    import sys

    repository = unique("e2e/fedora")
    creds = lab_world.dest_credentials()
    dest = f"docker://{lab_world.dest_registry}/{repository}"
    argv = [sys.executable, "-m", "labcheck.cli", "copy", f"docker://{lab_world.source_registry}/fedora", dest,
            "--dest-creds", f"{creds.username}:{creds.password}"]
    first = in_world(argv)
    assert "Writing manifest to image destination" in first.stdout + first.stderr

    raw_list = json.loads(in_world(["skopeo", "inspect", "--raw", f"docker://{lab_world.source_registry}/fedora"]).stdout)
    amd64 = next(m["digest"] for m in raw_list["manifests"] if m["platform"]["architecture"] == "amd64")
    inspected = json.loads(in_world(["skopeo", "inspect", "--creds", f"{creds.username}:{creds.password}", dest]).stdout)
    assert inspected["Digest"] == amd64  # the same instance skopeo copy would choose, byte for byte
    log_before = access_log(lab_world, lab_world.dest, repository)

    output = run_on_a_terminal(argv, {**os.environ, **lab_world.env()})  # skopeo says "skipped" on a tty only
    blob_lines = [line for line in output.splitlines() if line.startswith("Copying blob")]
    assert blob_lines and all(line.endswith("skipped: already exists") for line in blob_lines), output
    assert blob_writes(access_log(lab_world, lab_world.dest, repository)[len(log_before):]) == []
    assert creds.password not in output


def test_streamed_upload_of_a_known_size(lab_world: LabWorld) -> None:
    repository = unique("sized/blob")
    client = lab_world.registry_client(lab_world.dest_registry, repository, push=True)
    chunk = os.urandom(1 << 20)
    digest = "sha256:" + hashlib.sha256(chunk * 5).hexdigest()
    assert client.upload_blob((chunk for _ in range(5)), digest, size=5 << 20) == 5 << 20
    assert client.blob_size(digest) == 5 << 20


@pytest.mark.parametrize("count", [4, 6])
def test_a_source_that_disagrees_with_its_size_fails_at_once(lab_world: LabWorld, count: int) -> None:
    repository = unique("badsize/blob")
    client = lab_world.registry_client(lab_world.dest_registry, repository, push=True)
    chunk = os.urandom(1 << 20)
    started = time.monotonic()
    with pytest.raises(LabcheckError, match="than its size"):
        client.upload_blob((chunk for _ in range(count)), "sha256:" + "2" * 64, size=5 << 20)
    assert time.monotonic() - started < 10  # never waits for the read timeout
    rows = access_log(lab_world, lab_world.dest, repository)
    assert "DELETE" in [r[0] for r in rows if "/blobs/uploads/" in r[1]]
    assert not [r for r in rows if r[0] == "PUT"]
