"""Writing the `docker save` format exactly as skopeo 1.9 does: layer tars, configs, legacy layer dirs, manifest.json, repositories."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from labcheck.engine.archive.tarwriter import SeekableTarWriter, TarWriter
from labcheck.engine.format import gojson
from labcheck.engine.format.digest import digest_hex, sha256_digest
from labcheck.engine.reference.names import DockerName
from labcheck.errors import LabcheckError

MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"
LEGACY_LAYER_FILE = "layer.tar"
LEGACY_CONFIG_FILE = "json"
LEGACY_VERSION_FILE = "VERSION"
# The config fields skopeo copies into the top legacy layer's json, in this order of lookup.
_LEGACY_FIELDS = ("architecture", "config", "container", "container_config", "created", "docker_version", "os")


def config_path(digest: str) -> str:
    return digest_hex(digest) + ".json"


def layer_path(digest: str) -> str:
    return digest_hex(digest) + ".tar"


def go_compact(raw: str) -> str:
    """encoding/json's compact() with HTML escaping, as json.Marshal applies it to a json.RawMessage."""
    out: list[str] = []
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ch in "<>&\u2028\u2029":
                out.append(f"\\u{ord(ch):04x}")
                continue
            out.append(ch)
        elif ch in " \t\n\r":
            continue
        else:
            if ch == '"':
                in_string = True
            out.append(ch)
    return "".join(out)


def top_level_raw(config: bytes) -> dict[str, str]:
    """The top-level members of a JSON object as raw JSON text (json.Unmarshal into map[string]*json.RawMessage)."""
    text = config.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    members: dict[str, str] = {}
    i = _skip_ws(text, 0)
    if text[i:i + 1] != "{":
        raise LabcheckError("unmarshaling config: not a JSON object")
    i = _skip_ws(text, i + 1)
    if text[i:i + 1] == "}":
        return members
    while True:
        key, i = decoder.raw_decode(text, i)
        i = _skip_ws(text, i)
        if text[i:i + 1] != ":":
            raise LabcheckError("unmarshaling config: invalid JSON")
        start = _skip_ws(text, i + 1)
        _, end = decoder.raw_decode(text, start)
        members[key] = text[start:end]  # a later duplicate wins, as in Go
        i = _skip_ws(text, end)
        if text[i:i + 1] == "}":
            return members
        if text[i:i + 1] != ",":
            raise LabcheckError("unmarshaling config: invalid JSON")
        i = _skip_ws(text, i + 1)


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i


def _marshal_map(fields: dict[str, str | None]) -> bytes:
    """json.Marshal of a map[string]interface{} whose values are raw JSON text (None is null)."""
    parts = [f"{gojson.quote(k)}:{'null' if v is None else v}" for k, v in gojson.sorted_map(fields).items()]
    return ("{" + ",".join(parts) + "}").encode()


@dataclass
class LegacyLayer:
    """One `<id>/` directory of the legacy format."""

    layer_id: str
    json: bytes
    layer_digest: str


def legacy_layers(layer_digests: list[str], config: bytes) -> list[LegacyLayer]:
    """The legacy layer IDs and json files skopeo derives from the layers and the image config."""
    raw = top_level_raw(config) if layer_digests else {}
    result: list[LegacyLayer] = []
    chain_id = ""
    parent = ""
    for i, digest in enumerate(layer_digests):
        fields: dict[str, str | None] = {}
        if parent:
            fields["parent"] = gojson.quote(parent)
        if i == len(layer_digests) - 1:
            for name in _LEGACY_FIELDS:
                fields[name] = go_compact(raw[name]) if name in raw else None
        chain_id = digest if not chain_id else sha256_digest(f"{chain_id} {digest}".encode())
        fields["layer_id"] = gojson.quote(chain_id)
        layer_id = digest_hex(sha256_digest(_marshal_map(fields)))
        del fields["layer_id"]
        fields["id"] = gojson.quote(layer_id)
        result.append(LegacyLayer(layer_id, _marshal_map(fields), digest))
        parent = layer_id
    return result


@dataclass
class _ManifestItem:
    config: str
    layers: list[str]
    repo_tags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"Config": self.config, "RepoTags": self.repo_tags, "Layers": self.layers}


class ArchiveWriter:
    """Adds images to a tar stream as skopeo's docker/internal/tarfile.Writer does. Thread-safe."""

    def __init__(self, tar: TarWriter) -> None:
        self.tar = tar
        self.lock = threading.Lock()
        self._blobs: dict[str, int] = {}  # digest the archive names a blob by -> size
        self._legacy: set[str] = set()
        self._repositories: dict[str, dict[str, str]] = {}
        self._items: list[_ManifestItem] = []
        self._item_by_config: dict[str, int] = {}
        self.closed = False

    def blob_size(self, digest: str) -> int | None:
        with self.lock:
            return self._blobs.get(digest)

    def add_config(self, digest: str, data: bytes) -> None:
        with self.lock:
            if digest not in self._blobs:
                self.tar.add_bytes(config_path(digest), data)
                self._blobs[digest] = len(data)

    def add_layer(self, digest: str, size: int, stream: BinaryIO) -> None:
        """A layer whose digest and size are known before its bytes (the caller verifies them)."""
        with self.lock:
            if digest not in self._blobs:
                self.tar.add_stream(layer_path(digest), size, stream)
                self._blobs[digest] = size

    def add_unsized_layer(self, stream: BinaryIO, digest_of_written: Any) -> tuple[str, int]:
        """A layer named by the digest of what was written, known only at its end (seekable archives only).

        digest_of_written() is called after the stream ended and returns that digest.
        """
        tar = self.tar
        if not isinstance(tar, SeekableTarWriter):
            raise LabcheckError("internal error: unsized layers need a seekable archive")
        with self.lock:
            start, size = tar.add_unsized(stream)
            digest = digest_of_written()
            if digest in self._blobs:
                tar.discard_from(start)
            else:
                tar.finish_unsized(start, layer_path(digest), size)
                self._blobs[digest] = size
            return digest, size

    def add_image(self, layer_digests: list[str], config_digest: str, config: bytes, repo_tags: list[DockerName]) -> None:
        """Legacy metadata and the manifest.json item of one image whose blobs are already written."""
        with self.lock:
            legacy = legacy_layers(layer_digests, config)
            for layer in legacy:
                if layer.layer_id in self._legacy:
                    continue
                self.tar.add_symlink(f"{layer.layer_id}/{LEGACY_LAYER_FILE}", "../" + layer_path(layer.layer_digest))
                self.tar.add_bytes(f"{layer.layer_id}/{LEGACY_VERSION_FILE}", b"1.0")
                self.tar.add_bytes(f"{layer.layer_id}/{LEGACY_CONFIG_FILE}", layer.json)
                self._legacy.add(layer.layer_id)
            if legacy:
                for tag in repo_tags:
                    self._repositories.setdefault(tag.name, {})[tag.tag or ""] = legacy[-1].layer_id
            paths = [layer_path(d) for d in layer_digests]
            index = self._item_by_config.get(config_digest)
            if index is None:
                index = len(self._items)
                self._items.append(_ManifestItem(config_path(config_digest), paths))
                self._item_by_config[config_digest] = index
            item = self._items[index]
            if item.layers != paths:
                raise LabcheckError(f"internal error: two images with config {config_digest} and different layers")
            for tag in repo_tags:
                text = f"{tag.name}:{tag.tag}"
                if text not in item.repo_tags:
                    item.repo_tags.append(text)

    def close(self) -> None:
        """Write manifest.json, repositories and the end of the archive."""
        with self.lock:
            manifest = gojson.dumps([item.to_json() for item in self._items]) if self._items else "null"
            self.tar.add_bytes(MANIFEST_FILE, manifest.encode())
            repositories = {name: gojson.sorted_map(tags) for name, tags in self._repositories.items()}
            self.tar.add_bytes(REPOSITORIES_FILE, gojson.dumps(gojson.sorted_map(repositories)).encode())
            self.tar.close()
            self.closed = True
