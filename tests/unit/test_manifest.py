"""Media types, platform choice and conversion."""

import json

import pytest

from labcheck.engine.format import manifest as mf
from labcheck.engine.format import platform as platforms
from labcheck.engine.base.interfaces import BlobInfo

D = "sha256:" + "1" * 64


def _list(*platforms: tuple[str, str, str]) -> mf.ManifestList:
    entries = [
        {"mediaType": mf.DOCKER_V2S2, "size": 1, "digest": "sha256:" + str(i) * 64,
         "platform": {"architecture": a, "os": o, **({"variant": v} if v else {})}}
        for i, (a, o, v) in enumerate(platforms)
    ]
    raw = json.dumps({"schemaVersion": 2, "mediaType": mf.DOCKER_LIST, "manifests": entries}).encode()
    parsed = mf.parse_manifest(raw)
    assert isinstance(parsed, mf.ManifestList)
    return parsed


def test_guess_media_type() -> None:
    assert mf.guess_media_type(b'{"schemaVersion":2,"manifests":[]}') == mf.OCI_INDEX
    assert mf.guess_media_type(b'{"schemaVersion":1,"fsLayers":[]}') == mf.DOCKER_V2S1
    assert mf.guess_media_type(b'{"schemaVersion":2,"config":{"mediaType":"%s"}}' % mf.DOCKER_CONFIG.encode()) == mf.DOCKER_V2S2


def test_choose_instance_by_platform() -> None:
    listing = _list(("amd64", "linux", ""), ("arm64", "linux", "v8"), ("arm", "linux", "v6"))
    assert platforms.choose_instance(listing, arch="amd64", os="linux").platform.architecture == "amd64"
    assert platforms.choose_instance(listing, arch="arm64").platform.variant == "v8"
    assert platforms.choose_instance(listing, arch="arm", variant="v7").platform.variant == "v6"


def test_no_match_has_skopeos_text() -> None:
    listing = _list(("amd64", "linux", ""), ("arm64", "linux", "v8"))
    with pytest.raises(platforms.NoMatchingPlatformError) as info:
        platforms.choose_instance(listing, arch="arm64", os="linux", variant="v7")
    assert info.value.message == 'no image found in manifest list for architecture arm64, variant "v7", OS linux'
    with pytest.raises(platforms.NoMatchingPlatformError):
        platforms.choose_instance(listing, arch="s390x", os="linux")


def test_v2s2_to_oci_is_compact_in_struct_order() -> None:
    m = mf.ImageManifest(mf.DOCKER_V2S2, BlobInfo(D, 5, mf.DOCKER_CONFIG), [BlobInfo(D, 7, mf.DOCKER_LAYER_GZIP)])
    out = mf.convert_manifest(m, mf.OCI_MANIFEST, BlobInfo(D, 9, mf.DOCKER_CONFIG))
    assert out == (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":9},'
        b'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":7}]}'
    ) % (D.encode(), D.encode())


def test_list_to_oci_index_keeps_platforms() -> None:
    listing = _list(("arm64", "linux", "v8"))
    out = json.loads(mf.serialize_list(listing, mf.OCI_INDEX))
    assert out["mediaType"] == mf.OCI_INDEX
    assert out["manifests"][0]["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    assert list(out["manifests"][0]) == ["mediaType", "digest", "size", "platform"]


@pytest.mark.parametrize("machine", ["x86_64", "aarch64", "armv7l", "armv6l", "riscv64"])
def test_checks_and_engine_pick_the_same_instance(machine: str) -> None:
    from labcheck.checks.base import PlatformDigest
    from labcheck.checks.platforms import go_platform, pick_instance

    entries = [("amd64", "linux", ""), ("arm64", "linux", ""), ("arm64", "linux", "v8"), ("arm", "linux", "v7"),
               ("arm", "linux", "v6"), ("riscv64", "linux", "")]
    listing = _list(*entries)
    host = platforms.platform_of_machine(machine)
    engine_choice = platforms.choose_instance(listing, host=host)
    checks_choice = pick_instance([PlatformDigest(i.digest, str(i.platform)) for i in listing.instances],
                                  go_platform(machine))
    assert checks_choice is not None and checks_choice.digest == engine_choice.digest
    if machine == "armv6l":
        assert engine_choice.platform.variant == "v6"  # the engine's old table had no armv6l
    if machine == "aarch64":
        assert engine_choice.platform.variant == "v8"  # the detected variant first, as containers/image
