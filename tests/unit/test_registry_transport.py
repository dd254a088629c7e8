"""docker:// through the copy pipeline against the in-process registry: push, reuse, lists, digests,
registries.conf — in the fast tier. With the real registries and skopeo: tests/integration/ (marked lab)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse
from pathlib import Path
from typing import Iterator

import pytest

from labcheck.engine import api
from labcheck.engine.base.errors import RegistryError
from labcheck.engine.base.options import CopyOptions, Credentials, SideOptions
from labcheck.engine.copy import copy_between
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.engine.transports import open_destination, open_source
from labcheck.labenv.tls import SYSTEM_CA_BUNDLES, ensure_lab_pki
from tests.imagebuild import LIST, V2S2, write_dir_image, write_dir_list
from tests.servers.registry import InProcessRegistry, sha256

USER, PASSWORD = "student", "transport-pass"
SYSTEM_BUNDLE = next(p for p in SYSTEM_CA_BUNDLES if Path(p).exists())


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inprocess-tls")
    ensure_lab_pki(path)
    return path


@pytest.fixture
def registry(tls_dir: Path) -> Iterator[InProcessRegistry]:
    with InProcessRegistry(tls_dir=tls_dir, auth="basic", users={USER: PASSWORD}) as registry:
        yield registry


@pytest.fixture
def opts(tls_dir: Path) -> SideOptions:
    return SideOptions(ca_file=str(tls_dir / "ca.crt"), creds=Credentials(USER, PASSWORD))


def test_dir_to_registry_to_oci_keeps_the_image_byte_for_byte(registry: InProcessRegistry, opts: SideOptions,
                                                              tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=3)
    pushed = api.copy(f"dir:{image.path}", f"docker://{registry.address}/app:1", dst_options=opts)
    assert pushed.manifest_digest == image.manifest_digest
    stored, media_type = registry.repositories["app"].manifests[image.manifest_digest]
    assert (stored, media_type) == (image.manifest, V2S2) and registry.repositories["app"].tags == {"1": image.manifest_digest}
    for digest in [image.config_digest, *image.layer_digests]:
        assert sha256(registry.blobs[digest]) == digest

    pulled = api.copy(f"docker://{registry.address}/app:1", f"dir:{tmp_path / 'back'}", src_options=opts)
    assert (tmp_path / "back/manifest.json").read_bytes() == image.manifest and pulled.manifest_digest == image.manifest_digest
    api.copy(f"docker://{registry.address}/app:1", f"oci:{tmp_path / 'layout'}:one", src_options=opts)
    index = json.loads((tmp_path / "layout/index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["one"]


def test_a_second_push_reuses_every_blob(registry: InProcessRegistry, opts: SideOptions, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=2)
    api.copy(f"dir:{image.path}", f"docker://{registry.address}/reuse:1", dst_options=opts)
    first = len(registry.answered("reuse"))
    api.copy(f"dir:{image.path}", f"docker://{registry.address}/reuse:2", dst_options=opts)
    second = registry.answered("reuse")[first:]
    assert not [a for a in second if "/uploads/" in a.path]
    assert {a.method for a in second if "/blobs/" in a.path} == {"HEAD"}
    assert [(a.method, a.path) for a in second if "/manifests/" in a.path] == [("PUT", "/v2/reuse/manifests/2")]


def test_blobs_are_mounted_from_another_repository_of_the_same_registry(registry: InProcessRegistry,
                                                                         opts: SideOptions, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src")
    api.copy(f"dir:{image.path}", f"docker://{registry.address}/mount-a:1", dst_options=opts)
    api.copy(f"docker://{registry.address}/mount-a:1", f"docker://{registry.address}/mount-b:1",
             src_options=opts, dst_options=opts)
    mounts = [a for a in registry.answered("mount-b") if "mount=" in a.path]
    assert all(a.method == "POST" and a.status == 201 for a in mounts)
    mounted = {parse_qs(urlparse(a.path).query)["mount"][0] for a in mounts}
    assert mounted == set(image.layer_digests)  # the layers; the small config is written, as skopeo does


def test_all_copies_a_list_and_every_instance(registry: InProcessRegistry, opts: SideOptions, tmp_path: Path) -> None:
    listing = write_dir_list(tmp_path / "list")
    api.copy(f"dir:{listing.path}", f"docker://{registry.address}/multi:latest", dst_options=opts,
             options=CopyOptions(all_images=True))
    repository = registry.repositories["multi"]
    assert repository.manifests[repository.tags["latest"]] == (listing.manifest, LIST)
    assert len(repository.manifests) == 4  # the list and its three instances
    inspected = api.inspect(f"docker://{registry.address}/multi:latest", opts)
    assert inspected.architecture == "amd64" and inspected.repo_tags == ["latest"]


def test_a_source_by_digest_verifies_the_manifest(registry: InProcessRegistry, opts: SideOptions,
                                                  tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src")
    api.copy(f"dir:{image.path}", f"docker://{registry.address}/pinned:1", dst_options=opts)
    source = open_source(parse_image_reference(f"docker://{registry.address}/pinned@{image.manifest_digest}"), opts)
    try:
        assert source.get_manifest() == (image.manifest, V2S2)
    finally:
        source.close()
    registry.repositories["pinned"].manifests[image.manifest_digest] = (image.manifest + b" ", V2S2)  # tampered
    # A docker:// source reads its manifest as it opens (as containers/image does): that is where it fails.
    with pytest.raises(Exception, match="(?i)digest"):
        open_source(parse_image_reference(f"docker://{registry.address}/pinned@{image.manifest_digest}"), opts).close()


def test_a_corrupt_blob_in_the_registry_fails_the_copy_and_leaves_no_destination(
        registry: InProcessRegistry, opts: SideOptions, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src")
    api.copy(f"dir:{image.path}", f"docker://{registry.address}/corrupt:1", dst_options=opts)
    registry.blobs[image.layer_digests[0]] = b"not the layer"
    with pytest.raises(Exception, match="(?i)digest"):
        api.copy(f"docker://{registry.address}/corrupt:1", f"dir:{tmp_path / 'out'}", src_options=opts)
    assert not (tmp_path / "out").exists()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_registries_conf_insecure_and_location(tls_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_BUNDLE)
    image = write_dir_image(tmp_path / "src")
    with InProcessRegistry(tls_dir=tls_dir) as registry:
        conf = tmp_path / "registries.conf"
        conf.write_text(f'[[registry]]\nlocation = "{registry.address}"\ninsecure = true\n\n'
                        f'[[registry]]\nprefix = "mirror.example/fedora"\nlocation = "{registry.address}/fedora"\n'
                        "insecure = true\n")
        with_conf = SideOptions(registries_conf=str(conf))
        api.copy(f"dir:{image.path}", f"docker://{registry.address}/fedora:38", dst_options=with_conf)
        for name in (f"{registry.address}/fedora:38", "mirror.example/fedora:38"):
            source = open_source(parse_image_reference(f"docker://{name}"), with_conf)
            try:
                assert source.get_manifest() == (image.manifest, V2S2)
            finally:
                source.close()
        # Without the entry the same registry is not trusted (the source reads its manifest as it opens).
        with pytest.raises(RegistryError, match="x509: certificate signed by unknown authority"):
            open_source(parse_image_reference(f"docker://{registry.address}/fedora:38"), SideOptions()).close()


def test_a_failed_push_leaves_no_tag(registry: InProcessRegistry, opts: SideOptions, tmp_path: Path) -> None:
    image = write_dir_image(tmp_path / "src", layers=2)
    (image.path / image.layer_digests[1].split(":")[1]).write_bytes(b"corrupt on disk")
    source = open_source(parse_image_reference(f"dir:{image.path}"))
    destination = open_destination(parse_image_reference(f"docker://{registry.address}/partial:1"), opts)
    try:
        with pytest.raises(Exception, match="(?i)digest"):
            copy_between(source, destination)
    finally:
        source.close()
        destination.close()
    assert registry.repositories.get("partial") is None or registry.repositories["partial"].tags == {}
