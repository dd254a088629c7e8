"""Test helper: write small, valid images into dir: layouts, without any registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DIR_VERSION = b"Directory Transport Version: 1.1\n"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar with fixed metadata, so it is reproducible."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_600_000_000
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class BuiltImage:
    """What a test needs to know about an image it wrote."""

    path: Path
    manifest: bytes
    manifest_digest: str
    config_digest: str
    layer_digests: list[str]


def _write_blob(path: Path, data: bytes) -> str:
    digest = sha256(data)
    (path / digest.split(":", 1)[1]).write_bytes(data)
    return digest


def image_blobs(
    *,
    arch: str = "amd64",
    os_name: str = "linux",
    variant: str | None = None,
    layers: int = 2,
    labels: dict[str, str] | None = None,
    env: list[str] | None = None,
    seed: str = "",
    layer_size: int = 0,
) -> tuple[bytes, bytes, list[bytes]]:
    """(manifest, config, layer blobs) of a Docker v2s2 image."""
    tars = []
    for i in range(layers):
        files = {f"etc/file-{i}": f"layer {i} {arch} {seed}\n".encode()}
        if layer_size:
            files[f"big-{i}"] = os.urandom(layer_size)
        tars.append(layer_tar(files))
    blobs = [gzip.compress(t, mtime=0) for t in tars]
    config: dict = {
        "architecture": arch,
        "config": {
            "Hostname": "",
            "Env": env if env is not None else ["PATH=/usr/bin:/bin", "container=oci"],
            "Cmd": ["/bin/sh"],
            "Labels": labels if labels is not None else {"name": "fedora", "vendor": "Fedora <Project> & co"},
        },
        "container_config": {"Cmd": ["/bin/sh"]},
        "created": "2023-04-05T06:07:08.123456789Z",
        "docker_version": "20.10.24",
        "history": [{"created": "2023-04-05T06:07:08Z", "created_by": f"ADD layer-{i}"} for i in range(layers)],
        "os": os_name,
        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in tars]},
    }
    if variant:
        config["variant"] = variant
    config_bytes = json.dumps(config, indent=2).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": V2S2,
        "config": {"mediaType": CONFIG, "size": len(config_bytes), "digest": sha256(config_bytes)},
        "layers": [{"mediaType": LAYER_GZIP, "size": len(b), "digest": sha256(b)} for b in blobs],
    }
    return json.dumps(manifest, indent=3).encode(), config_bytes, blobs


def write_dir_image(path: Path, **kwargs) -> BuiltImage:
    """A single Docker v2s2 image in a dir: layout at path (created)."""
    path.mkdir(parents=True, exist_ok=True)
    manifest, config, blobs = image_blobs(**kwargs)
    (path / "version").write_bytes(DIR_VERSION)
    config_digest = _write_blob(path, config)
    layer_digests = [_write_blob(path, b) for b in blobs]
    (path / "manifest.json").write_bytes(manifest)
    return BuiltImage(path, manifest, sha256(manifest), config_digest, layer_digests)


PLATFORMS = [("amd64", "linux", None), ("arm64", "linux", "v8"), ("ppc64le", "linux", None)]


def write_dir_list(path: Path, platforms: list[tuple[str, str, str | None]] = PLATFORMS) -> BuiltImage:
    """A Docker manifest list with one instance per platform, as skopeo --all lays it out in dir:."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "version").write_bytes(DIR_VERSION)
    entries = []
    all_layers: list[str] = []
    for arch, os_name, variant in platforms:
        manifest, config, blobs = image_blobs(arch=arch, os_name=os_name, variant=variant, seed=arch)
        _write_blob(path, config)
        all_layers += [_write_blob(path, b) for b in blobs]
        digest = sha256(manifest)
        (path / (digest.split(":", 1)[1] + ".manifest.json")).write_bytes(manifest)
        platform = {"architecture": arch, "os": os_name}
        if variant:
            platform["variant"] = variant
        entries.append({"mediaType": V2S2, "size": len(manifest), "digest": digest, "platform": platform})
    listing = json.dumps({"schemaVersion": 2, "mediaType": LIST, "manifests": entries}, indent=3).encode()
    (path / "manifest.json").write_bytes(listing)
    return BuiltImage(path, listing, sha256(listing), "", all_layers)
