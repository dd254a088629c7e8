"""The OCI config and manifest of an image made up from files (tarball:, sif:), byte for byte as
containers/image marshals image-spec's Image and Manifest structs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labcheck.engine.format import gojson
from labcheck.engine.format.digest import digest_hex, sha256_digest
from labcheck.engine.format.manifest import OCI_CONFIG, OCI_MANIFEST


@dataclass(frozen=True)
class Layer:
    digest: str  # of the blob as stored
    size: int
    media_type: str
    diff_id: str  # of its uncompressed tar
    created: str  # Go-formatted time of its history entry


def added_by(diff_id: str) -> str:
    """The history's created_by of a layer added from a file, as containers/image words it."""
    return f"/bin/sh -c #(nop) ADD file:{digest_hex(diff_id)} in /"


def config_json(*, created: str, architecture: str, os: str, cmd: list[str] | None,
                diff_ids: list[str], history: list[dict[str, Any]]) -> bytes:
    """imgspecv1.Image, fields in struct order, omitempty as tagged."""
    config: dict[str, Any] = {"created": created, "architecture": architecture, "os": os,
                              "config": {"Cmd": cmd} if cmd else {},
                              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    if history:
        config["history"] = history
    return gojson.dumps(config).encode()


def history_entry(created: str, created_by: str, comment: str = "", *, empty_layer: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"created": created, "created_by": created_by}
    if comment:
        entry["comment"] = comment
    if empty_layer:
        entry["empty_layer"] = True
    return entry


def manifest_json(config: bytes, layers: list[Layer], *, with_media_type: bool) -> bytes:
    """imgspecv1.Manifest with one config and the layers; mediaType only when the transport sets it."""
    manifest: dict[str, Any] = {"schemaVersion": 2}
    if with_media_type:
        manifest["mediaType"] = OCI_MANIFEST
    manifest["config"] = {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)}
    manifest["layers"] = [{"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
                          for layer in layers]
    return gojson.dumps(manifest).encode()
