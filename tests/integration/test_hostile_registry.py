"""A hostile registry: the fault proxy in front of the lab's real, authenticated destination registry.

Every fault has its expected outcome: retried and the copy complete and digest-verified, or one clear
error naming the blob or URL and no destination at all. Credentials never follow a redirect to another host.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from labcheck.engine.base.errors import DigestMismatchError, RegistryError
from labcheck.engine.base.limits import MAX_CONFIG, MAX_MANIFEST
from labcheck.engine.base.options import SideOptions
from labcheck.engine.copy import copy_image
from labcheck.engine.format.resolve import BlobTooLargeError
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.errors import LabcheckError
from labcheck.labenv.world import LabWorld
from tests.servers.fault_proxy import BlobStore, Fault, FaultProxy
from tests.soak import HOSTILE_REPOSITORY, SeededImage, seed_hostile_image, verify_dir

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

STALL = 0.5  # the client's stall timeout here; the proxy drips one byte per 3 × STALL


@pytest.fixture(scope="module")
def image(lab_world: LabWorld) -> SeededImage:
    return seed_hostile_image(lab_world)


@pytest.fixture
def store(lab_world: LabWorld) -> Iterator[BlobStore]:
    with BlobStore(tls_dir=lab_world.tls_dir) as store:
        yield store


@pytest.fixture
def proxy(lab_world: LabWorld, store: BlobStore) -> Iterator[FaultProxy]:
    with FaultProxy(f"https://{lab_world.dest_registry}", ca_file=lab_world.tls_dir / "ca.crt",
                    tls_dir=lab_world.tls_dir, store=store) as proxy:
        proxy.drip_gap = 3 * STALL
        yield proxy


def copy_through(world: LabWorld, proxy: FaultProxy, dest: Path, *, retry_times: int) -> None:
    options = SideOptions(creds=world.dest_credentials(), cert_dir=str(world.tls_dir / "cert-dir"),
                          retry_times=retry_times, retry_delay=0.05, stall_timeout=STALL)
    copy_image(parse_image_reference(f"docker://{proxy.address}/{HOSTILE_REPOSITORY}:38"),
               parse_image_reference(f"dir:{dest}"), src_options=options)


def gets(proxy: FaultProxy, digest: str) -> int:
    return proxy.count(lambda seen: seen.method == "GET" and seen.path.endswith(f"/blobs/{digest}"))


def manifest_gets(proxy: FaultProxy) -> int:
    return proxy.count(lambda seen: seen.method == "GET" and "/manifests/" in seen.path)


def fails_cleanly(world: LabWorld, proxy: FaultProxy, dest: Path, *, retry_times: int,
                  expected: type[LabcheckError] = LabcheckError) -> LabcheckError:
    """The copy fails with one labcheck error, and leaves no destination behind."""
    with pytest.raises(expected) as info:
        copy_through(world, proxy, dest, retry_times=retry_times)
    assert not dest.exists()
    return info.value


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / f"image-{uuid.uuid4().hex[:6]}"


# --- connections reset mid-blob ---------------------------------------------------------------------


def test_a_reset_mid_blob_is_retried_and_the_copy_completes(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("reset", path=image.layer))
    copy_through(lab_world, proxy, dest, retry_times=2)
    verify_dir(dest, image)
    assert proxy.injected == {"reset": 1} and gets(proxy, image.layer) == 2


@pytest.mark.parametrize("repeat", range(3))  # a reset may reach the client before or after the half body
def test_a_reset_mid_config_is_retried_and_the_copy_completes(lab_world, proxy, image, dest, repeat: int) -> None:
    proxy.inject(Fault("reset", path=image.config))
    copy_through(lab_world, proxy, dest, retry_times=1)
    verify_dir(dest, image)
    assert proxy.injected == {"reset": 1} and gets(proxy, image.config) == 2


def test_resets_beyond_the_retries_are_one_error_naming_the_blob_url(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("reset", path=image.layer, times=99))
    error = fails_cleanly(lab_world, proxy, dest, retry_times=1, expected=RegistryError)
    assert image.layer in error.message and "connection lost" in error.message
    assert gets(proxy, image.layer) == 2


# --- 500, 502, 503, 429 ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503])
def test_bad_gateway_and_unavailable_are_retried(lab_world, proxy, image, dest, status: int) -> None:
    proxy.inject(Fault("status", path=image.layer, status=status, times=2))
    copy_through(lab_world, proxy, dest, retry_times=2)
    verify_dir(dest, image)
    assert gets(proxy, image.layer) == 3


def test_500_is_not_retried_as_containers_image_does_not(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("status", path=image.layer, status=500))
    error = fails_cleanly(lab_world, proxy, dest, retry_times=3, expected=RegistryError)
    assert error.status == 500 and not error.temporary
    assert image.layer in error.url and image.layer in error.message
    assert gets(proxy, image.layer) == 1


def test_429_without_retry_after_is_retried_even_without_retry_times(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("status", path=image.layer, status=429, times=2))
    copy_through(lab_world, proxy, dest, retry_times=0)
    verify_dir(dest, image)
    assert gets(proxy, image.layer) == 3


def test_429_with_retry_after_waits_as_told_then_completes(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("status", path=image.layer, status=429, retry_after="1"))
    started = time.monotonic()
    copy_through(lab_world, proxy, dest, retry_times=0)
    assert time.monotonic() - started >= 1.0  # the retry waited for Retry-After, not for retry_delay
    verify_dir(dest, image)
    assert gets(proxy, image.layer) == 2


def test_429_forever_is_one_error_after_the_retries(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("status", path=image.layer, status=429, times=99))
    error = fails_cleanly(lab_world, proxy, dest, retry_times=0, expected=RegistryError)
    assert error.status == 429 and image.layer in error.message
    assert gets(proxy, image.layer) == 6  # 1 + containers/image's 5 retries of a 429


# --- drips slower than the stall timeout ---------------------------------------------------------------


def test_a_dripping_blob_stalls_and_the_retry_completes(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("drip", path=image.layer))
    copy_through(lab_world, proxy, dest, retry_times=1)
    verify_dir(dest, image)
    assert proxy.injected == {"drip": 1} and gets(proxy, image.layer) == 2


def test_a_blob_that_always_drips_is_one_stall_error_naming_its_url(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("drip", path=image.layer, times=99))
    error = fails_cleanly(lab_world, proxy, dest, retry_times=0, expected=RegistryError)
    assert "stalled" in error.message and f"no data for {STALL:g}s" in error.message
    assert image.layer in error.message and error.temporary


def test_a_dripping_manifest_stalls_and_is_retried(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("drip", path="/manifests/38"))
    copy_through(lab_world, proxy, dest, retry_times=1)
    verify_dir(dest, image)
    assert manifest_gets(proxy) == 2


def test_a_manifest_that_always_drips_is_one_stall_error(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("drip", path="/manifests/38", times=99))
    error = fails_cleanly(lab_world, proxy, dest, retry_times=1, expected=RegistryError)
    assert "stalled" in error.message and "/manifests/38" in error.message


# --- truncated and wrong bytes ------------------------------------------------------------------------


def test_a_truncated_blob_is_a_digest_error_naming_the_blob(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("truncate", path=image.layer))
    error = fails_cleanly(lab_world, proxy, dest, retry_times=2, expected=DigestMismatchError)
    assert error.expected == image.layer and image.layer in error.message


def test_wrong_bytes_for_a_digest_are_one_error_naming_the_blob(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("corrupt", path=image.layer))
    error = fails_cleanly(lab_world, proxy, dest, retry_times=2, expected=DigestMismatchError)
    assert error.expected == image.layer and error.actual != image.layer
    assert gets(proxy, image.layer) == 1


def test_a_wrong_config_is_one_error_naming_the_config(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("corrupt", path=image.config))
    error = fails_cleanly(lab_world, proxy, dest, retry_times=2, expected=DigestMismatchError)
    assert error.expected == image.config and "config" in error.message


# --- redirects to another host -------------------------------------------------------------------------


def test_a_blob_redirected_to_another_host_gets_no_credentials(lab_world, proxy, store, image, dest) -> None:
    proxy.inject(Fault("redirect", path=image.layer), Fault("redirect", path=image.config))
    copy_through(lab_world, proxy, dest, retry_times=0)
    verify_dir(dest, image)
    assert store.count() == 2  # both blobs came from the other host …
    assert store.requests_with_credentials() == 0  # … which never saw the credentials
    blob_gets = [seen for seen in proxy.requests if seen.method == "GET" and "/blobs/" in seen.path]
    assert blob_gets and all("Authorization" in seen.headers for seen in blob_gets)  # the registry did


# --- oversized manifests and configs -------------------------------------------------------------------


def test_an_oversized_manifest_is_refused_naming_its_url(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("oversize", path="/manifests/38"))
    error = fails_cleanly(lab_world, proxy, dest, retry_times=2, expected=RegistryError)
    assert "/manifests/38" in error.message and "more than 4 MiB" in error.message
    assert not error.temporary and manifest_gets(proxy) == 1
    assert MAX_MANIFEST == 4 << 20


def test_an_oversized_config_is_refused_naming_the_config(lab_world, proxy, image, dest) -> None:
    proxy.inject(Fault("oversize", path=image.config))
    error = fails_cleanly(lab_world, proxy, dest, retry_times=2, expected=BlobTooLargeError)
    assert image.config in error.message and "larger than 4 MiB" in error.message
    assert MAX_CONFIG == 4 << 20


def test_a_config_announced_larger_than_the_limit_is_not_even_fetched(lab_world, proxy, image, tmp_path) -> None:
    """A manifest that declares a 5 MiB config (pushed by digest): refused before any GET of it."""
    manifest = json.loads(image.manifest)
    manifest["config"]["size"] = 5 << 20
    raw = json.dumps(manifest).encode()
    client = lab_world.registry_client(lab_world.dest_registry, HOSTILE_REPOSITORY, push=True)
    try:
        client.put_manifest("big-config", raw, manifest["mediaType"])
    finally:
        client.close()
    options = SideOptions(creds=lab_world.dest_credentials(), cert_dir=str(lab_world.tls_dir / "cert-dir"))
    dest = tmp_path / "big"
    with pytest.raises(BlobTooLargeError) as info:
        copy_image(parse_image_reference(f"docker://{proxy.address}/{HOSTILE_REPOSITORY}:big-config"),
                   parse_image_reference(f"dir:{dest}"), src_options=options)
    assert image.config in info.value.message and gets(proxy, image.config) == 0
    assert not dest.exists()
