"""Manifests and lists of every media type skopeo handles: parsing and conversion."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from labcheck.engine.base.errors import UnsupportedError
from labcheck.engine.base.interfaces import BlobInfo
from labcheck.engine.format import gojson
from labcheck.engine.format.digest import sha256_digest
from labcheck.engine.format.platform import Platform
from labcheck.errors import LabcheckError

DOCKER_V2S1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_V2S1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDIST_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_NONDIST_LAYER_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

LIST_TYPES = (DOCKER_LIST, OCI_INDEX)
V2S1_TYPES = (DOCKER_V2S1, DOCKER_V2S1_SIGNED)
# --format values, as skopeo spells them.
FORMATS = {"oci": OCI_MANIFEST, "v2s2": DOCKER_V2S2, "v2s1": DOCKER_V2S1_SIGNED}

_DOCKER_TO_OCI_LAYER = {
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER: OCI_LAYER,
    DOCKER_FOREIGN_LAYER_GZIP: OCI_NONDIST_LAYER_GZIP,
    DOCKER_FOREIGN_LAYER: OCI_NONDIST_LAYER,
}
_OCI_TO_DOCKER_LAYER = {v: k for k, v in _DOCKER_TO_OCI_LAYER.items()}
# The compression each (re)compressible layer type says its blob has (None: a plain tar).
LAYER_COMPRESSION: dict[str, str | None] = {
    DOCKER_LAYER: None, DOCKER_LAYER_GZIP: "gzip", OCI_LAYER: None, OCI_LAYER_GZIP: "gzip", OCI_LAYER_ZSTD: "zstd",
}


def layer_media_type(original: str, compression: str | None) -> str:
    """The type of a layer of type original once stored with compression (docker's types have no zstd)."""
    if original.startswith("application/vnd.docker.") and compression != "zstd":
        return DOCKER_LAYER_GZIP if compression == "gzip" else DOCKER_LAYER
    return {None: OCI_LAYER, "gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD}[compression]


class ManifestError(LabcheckError):
    """A manifest that cannot be parsed or is not of a usable type."""


@dataclass(frozen=True)
class Instance:
    """One entry of a manifest list / OCI index."""

    digest: str
    size: int
    media_type: str
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ManifestList:
    media_type: str
    instances: list[Instance]
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ImageManifest:
    """A single-image manifest. config is None for schema1, whose history stands in for it."""

    media_type: str
    config: BlobInfo | None
    layers: list[BlobInfo]
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    v1_history: list[str] = field(default_factory=list, compare=False, hash=False)


def manifest_digest(raw: bytes) -> str:
    """The digest of a manifest (for schema1 skopeo strips the JWS signature first; we hash as-is)."""
    return sha256_digest(raw)


def _load(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError("manifest is not a JSON object")
    return data


def guess_media_type(raw: bytes) -> str:
    """The media type of manifest bytes, the way containers/image guesses it."""
    data = _load(raw)
    media_type = data.get("mediaType")
    if isinstance(media_type, str) and media_type:
        return media_type
    if data.get("schemaVersion") == 1:
        return DOCKER_V2S1_SIGNED if "signatures" in data else DOCKER_V2S1
    if "manifests" in data:
        return OCI_INDEX
    config = data.get("config")
    if isinstance(config, dict) and config.get("mediaType") == DOCKER_CONFIG:
        return DOCKER_V2S2
    return OCI_MANIFEST


def is_list(media_type: str) -> bool:
    return media_type in LIST_TYPES


def _blob(d: object) -> BlobInfo:
    if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
        raise ManifestError("manifest descriptor without a digest")
    return BlobInfo(
        digest=d["digest"],
        size=int(d.get("size", -1)),
        media_type=d.get("mediaType", ""),
        annotations=dict(d.get("annotations") or {}),
    )


def _platform_of(d: dict[str, Any] | None) -> Platform | None:
    if not isinstance(d, dict):
        return None
    return Platform(
        architecture=d.get("architecture", ""),
        os=d.get("os", ""),
        variant=d.get("variant", ""),
        os_version=d.get("os.version", ""),
        os_features=tuple(d.get("os.features") or ()),
    )


def parse_manifest(raw: bytes, media_type: str = "") -> ImageManifest | ManifestList:
    """Parse manifest bytes of any supported media type (guessed when not given); ManifestError for
    bytes that are not one, whatever their shape."""
    media_type = media_type or guess_media_type(raw)
    data = _load(raw)
    try:
        return _parse(data, media_type)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # A field of the wrong JSON type or missing where the format requires it.
        raise ManifestError(f"malformed {media_type or 'manifest'}: {exc.__class__.__name__}: {exc}") from None


def _parse(data: dict[str, Any], media_type: str) -> ImageManifest | ManifestList:
    if media_type in LIST_TYPES:
        instances = [
            Instance(
                digest=m["digest"],
                size=int(m.get("size", -1)),
                media_type=m.get("mediaType", ""),
                platform=_platform_of(m.get("platform")),
                urls=tuple(m.get("urls") or ()),
                annotations=dict(m.get("annotations") or {}),
            )
            for m in data.get("manifests") or []
        ]
        return ManifestList(media_type, instances, dict(data.get("annotations") or {}))
    if media_type in (DOCKER_V2S2, OCI_MANIFEST):
        return ImageManifest(
            media_type,
            _blob(data.get("config")),
            [_blob(layer) for layer in data.get("layers") or []],
            dict(data.get("annotations") or {}),
        )
    if media_type in V2S1_TYPES:
        # schema1 lists layers newest first; skopeo reports them oldest first.
        layers = [BlobInfo(digest=l["blobSum"]) for l in reversed(data.get("fsLayers") or [])]
        history = [h.get("v1Compatibility", "") for h in data.get("history") or []]
        return ImageManifest(media_type, None, layers, v1_history=history)
    raise ManifestError(f"unsupported manifest media type {media_type!r}")


# --- conversion -------------------------------------------------------------------------------


def _oci_descriptor(info: BlobInfo, media_type: str, urls: list[str] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": media_type, "digest": info.digest, "size": info.size}
    if urls:
        d["urls"] = urls
    if info.annotations:
        d["annotations"] = gojson.sorted_map(info.annotations)
    return d


def _docker_descriptor(info: BlobInfo, media_type: str) -> dict[str, Any]:
    return {"mediaType": media_type, "size": info.size, "digest": info.digest}


def convert_manifest(m: ImageManifest, target: str, config: BlobInfo | None) -> bytes:
    """Manifest bytes of m converted to target, naming config (which may have been converted too)."""
    if m.config is None or config is None:
        raise UnsupportedError(
            "converting a schema1 manifest is not supported",
            hint="copy it to a dir: destination, which keeps it as it is",
        )
    if target == OCI_MANIFEST:
        layers = []
        for layer in m.layers:
            if layer.media_type in _DOCKER_TO_OCI_LAYER:
                mt = _DOCKER_TO_OCI_LAYER[layer.media_type]
            elif m.media_type == OCI_MANIFEST or layer.media_type == OCI_LAYER_ZSTD:
                mt = layer.media_type
            else:
                raise UnsupportedError(f'Unknown media type during manifest conversion: "{layer.media_type}"')
            layers.append(_oci_descriptor(layer, mt))
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _oci_descriptor(replace(config, annotations={}), OCI_CONFIG),
            "layers": layers,
        }
        if m.media_type == OCI_MANIFEST and m.annotations:
            doc["annotations"] = gojson.sorted_map(m.annotations)
        return gojson.dumps(doc).encode()
    if target == DOCKER_V2S2:
        layers = []
        for layer in m.layers:
            if layer.media_type in _OCI_TO_DOCKER_LAYER:
                layers.append(_docker_descriptor(layer, _OCI_TO_DOCKER_LAYER[layer.media_type]))
            elif layer.media_type in _DOCKER_TO_OCI_LAYER:
                layers.append(_docker_descriptor(layer, layer.media_type))
            else:
                raise UnsupportedError(f'Unknown media type during manifest conversion: "{layer.media_type}"')
        doc = {
            "schemaVersion": 2,
            "mediaType": DOCKER_V2S2,
            "config": _docker_descriptor(config, DOCKER_CONFIG),
            "layers": layers,
        }
        return gojson.dumps(doc).encode()
    raise UnsupportedError(f"converting a manifest to {target} is not supported")


def _platform_json(p: Platform, *, oci: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"architecture": p.architecture, "os": p.os}
    if p.os_version:
        d["os.version"] = p.os_version
    if p.os_features:
        d["os.features"] = list(p.os_features)
    if p.variant:
        d["variant"] = p.variant
    return d


def serialize_list(listing: ManifestList, target: str) -> bytes:
    """A list as containers/image marshals it, in target's format (Docker list or OCI index)."""
    entries = []
    for inst in listing.instances:
        if target == OCI_INDEX:
            e: dict[str, Any] = {"mediaType": inst.media_type, "digest": inst.digest, "size": inst.size}
            if inst.urls:
                e["urls"] = list(inst.urls)
            if inst.annotations:
                e["annotations"] = gojson.sorted_map(inst.annotations)
            if inst.platform is not None or listing.media_type == DOCKER_LIST:
                e["platform"] = _platform_json(inst.platform or Platform("", ""), oci=True)
        elif target == DOCKER_LIST:
            e = {"mediaType": inst.media_type, "size": inst.size, "digest": inst.digest}
            if inst.urls:
                e["urls"] = list(inst.urls)
            e["platform"] = _platform_json(inst.platform or Platform("", ""), oci=False)
        else:
            raise UnsupportedError(f"converting a list to {target} is not supported")
        entries.append(e)
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": target, "manifests": entries}
    if target == OCI_INDEX and listing.annotations:
        doc["annotations"] = gojson.sorted_map(listing.annotations)
    return gojson.dumps(doc).encode()


def list_type_for(image_type: str) -> str:
    """The list type that goes with a single-image manifest type."""
    return OCI_INDEX if image_type == OCI_MANIFEST else DOCKER_LIST


def image_type_for(list_type: str) -> str:
    return OCI_MANIFEST if list_type == OCI_INDEX else DOCKER_V2S2
