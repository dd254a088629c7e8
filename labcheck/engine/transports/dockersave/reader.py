"""Reading the `docker save` format (skopeo's and docker's): the member catalog, the image chosen, the manifest skopeo generates."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable

from labcheck.engine.archive.compression import DecompressingReader
from labcheck.engine.archive.extract import checked_member, member_path
from labcheck.engine.base.errors import ImageNotFoundError, UnsupportedError
from labcheck.engine.base.interfaces import BlobInfo, SourceDefaults
from labcheck.engine.format import gojson
from labcheck.engine.format.digest import sha256_digest
from labcheck.engine.format.manifest import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_V2S2
from labcheck.engine.reference.names import DockerName, parse_docker_name
from labcheck.errors import LabcheckError

MANIFEST_FILE = "manifest.json"
MAX_MANIFEST_SIZE = 1 << 20  # containers/image's iolimits.MaxTarFileManifestSize
MAX_CONFIG_SIZE = 4 << 20  # iolimits.MaxConfigBodySize


class ArchiveFormatError(LabcheckError):
    """The archive is not a readable `docker save` archive, or does not hold the image asked for."""


@dataclass
class Member:
    """One tar entry: its cleaned path, kind, size and (for links) the archive path it points to."""

    path: str
    kind: str  # "file", "symlink", "hardlink", "dir"
    size: int
    target: str | None = None
    offset: int = -1  # where its data starts in a seekable archive
    uncompressed_size: int = -1  # known when a compressed member was measured while streaming


class Catalog:
    """Every member of an archive, checked for safety as it is added."""

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}

    def add(self, info: tarfile.TarInfo) -> Member:
        path, target = checked_member(info)
        kind = "symlink" if info.issym() else "hardlink" if info.islnk() else "dir" if info.isdir() else "file"
        member = Member(path, kind, info.size if kind == "file" else 0, target, getattr(info, "offset_data", -1))
        self.members[path] = member
        return member

    def resolve(self, path: str) -> Member:
        """The regular file at path, following one link as containers/image does."""
        member = self.members.get(path)
        if member is not None and member.target is not None:
            member = self.members.get(member.target)
        if member is None:
            raise ArchiveFormatError(f"loading tar component {path}: file does not exist")
        if member.kind != "file":
            raise ArchiveFormatError(f"Error reading tar archive component {path}: not a regular file")
        return member


@dataclass(frozen=True)
class ManifestItem:
    """One element of manifest.json."""

    config: str
    repo_tags: list[str]
    layers: list[str]


def parse_manifest_json(data: bytes) -> list[ManifestItem]:
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ArchiveFormatError(f"decoding tar manifest.json: {exc}") from None
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise ArchiveFormatError("decoding tar manifest.json: not a list of images")
    items = []
    for entry in raw:
        fields = {k.lower(): v for k, v in entry.items()}  # Go matches field names case-insensitively
        config, tags, layers = fields.get("config"), fields.get("repotags"), fields.get("layers")
        # As Go's json.Unmarshal into {Config string; RepoTags, Layers []string}: null is empty, another type an error.
        if not (config is None or isinstance(config, str)) or not all(
                value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))
                for value in (tags, layers)):
            raise ArchiveFormatError("decoding tar manifest.json: Config must be a string, RepoTags and Layers "
                                     "lists of strings")
        items.append(ManifestItem(config or "", list(tags or []), list(layers or [])))
    return items


def choose_item(items: list[ManifestItem], named: DockerName | None, source_index: int | None) -> ManifestItem:
    """The image (named, source_index) selects, with containers/image's wording when none matches."""
    if named is not None:
        wanted = str(named)
        for i, item in enumerate(items):
            for tag in item.repo_tags:
                try:
                    parsed = parse_docker_name(tag)
                except LabcheckError as exc:
                    raise ArchiveFormatError(f"Invalid tag {json.dumps(tag)} in manifest.json item @{i}: {exc}") from None
                if str(parsed) == wanted:
                    return item
        raise ImageNotFoundError(f"Tag {json.dumps(wanted)} not found",
                                 hint="see the archive's tags with: tar -xOf ARCHIVE manifest.json")
    if source_index is not None:
        if source_index >= len(items):
            raise ImageNotFoundError(
                f"Invalid source index @{source_index}, only {len(items)} manifest items available")
        return items[source_index]
    if len(items) != 1:
        raise ArchiveFormatError(f"Unexpected tar manifest.json: expected 1 item, got {len(items)}",
                                 hint="choose an image with :NAME:TAG or :@INDEX")
    return items[0]


@dataclass(frozen=True)
class ArchiveLayer:
    diff_id: str
    path: str  # the regular member holding it
    size: int  # uncompressed size


@dataclass(frozen=True)
class ArchiveImage:
    """One image of an archive: its config, and its layers in config order."""

    config: bytes
    config_digest: str
    layers: list[ArchiveLayer]

    def manifest(self) -> bytes:
        """The Docker v2s2 manifest skopeo generates for it: layers named by diffID and sized uncompressed.

        containers/image 5.23 labels them DockerV2Schema2LayerMediaType, which is the *gzip* media
        type although the bytes are not compressed; we keep that label so the bytes equal skopeo's.
        """
        return gojson.dumps({
            "schemaVersion": 2,
            "mediaType": DOCKER_V2S2,
            "config": {"mediaType": DOCKER_CONFIG, "size": len(self.config), "digest": self.config_digest},
            "layers": [{"mediaType": DOCKER_LAYER_GZIP, "size": l.size, "digest": l.diff_id} for l in self.layers],
        }).encode()

    def layer(self, digest: str) -> ArchiveLayer | None:
        return next((l for l in self.layers if l.diff_id == digest), None)


def diff_ids_of(config: bytes, config_path: str) -> list[str]:
    try:
        parsed = json.loads(config)
    except ValueError as exc:
        raise ArchiveFormatError(f"decoding tar config {config_path}: {exc}") from None
    rootfs = _get_ci(parsed, "rootfs") if isinstance(parsed, dict) else None
    if not isinstance(rootfs, dict):
        raise ArchiveFormatError(f"Invalid image config (rootFS is not set): {config_path}")
    return [str(d) for d in (_get_ci(rootfs, "diff_ids") or [])]


def _get_ci(mapping: dict[str, Any], key: str) -> Any:
    """encoding/json's case-insensitive field lookup (an exact match wins)."""
    if key in mapping:
        return mapping[key]
    return next((v for k, v in mapping.items() if k.lower() == key), None)


def build_image(
    catalog: Catalog,
    item: ManifestItem,
    read_small: Callable[[Member, int], bytes],
    uncompressed_size: Callable[[Member], int],
) -> ArchiveImage:
    """The image of a manifest.json item, as containers/image's tarfile.Source prepares it."""
    config = read_small(catalog.resolve(member_path(item.config)), MAX_CONFIG_SIZE)
    diff_ids = diff_ids_of(config, item.config)
    if len(item.layers) != len(diff_ids):
        raise ArchiveFormatError(
            f"Inconsistent layer count: {len(item.layers)} in manifest, {len(diff_ids)} in config")
    known: dict[str, ArchiveLayer] = {}
    used_paths: set[str] = set()
    for diff_id, layer_path in zip(diff_ids, item.layers):
        if diff_id in known:
            continue  # the same layer twice in one image; either copy will do
        try:
            member = catalog.resolve(member_path(layer_path))
        except ArchiveFormatError:
            raise ArchiveFormatError("Some layer tarfiles are missing in the tarball",
                                     hint=f"{layer_path} is named in manifest.json but not in the archive") from None
        if member.path in used_paths:
            raise ArchiveFormatError(f"Layer tarfile {layer_path} used for two different DiffID values")
        used_paths.add(member.path)
        known[diff_id] = ArchiveLayer(diff_id, member.path, uncompressed_size(member))
    return ArchiveImage(config, sha256_digest(config), [known[d] for d in diff_ids])


class ArchiveImageSource(SourceDefaults):
    """An ImageSource over one image of an archive; open_member gives a member's (raw) bytes."""

    def __init__(self, image: ArchiveImage, open_member: Callable[[str], BinaryIO],
                 on_close: Callable[[], None] = lambda: None, *, transport: str = "docker-archive") -> None:
        self.image = image
        self._open_member = open_member
        self._on_close = on_close
        self._transport = transport
        self._manifest = image.manifest()

    def get_manifest(self, instance_digest: str | None = None) -> tuple[bytes, str]:
        if instance_digest is not None:
            raise UnsupportedError(f'Manifest lists are not supported by "{self._transport}:"')
        return self._manifest, DOCKER_V2S2

    def get_blob(self, info: BlobInfo) -> tuple[BinaryIO, int]:
        if info.digest == self.image.config_digest:
            return io.BytesIO(self.image.config), len(self.image.config)
        layer = self.image.layer(info.digest)
        if layer is None:
            raise ImageNotFoundError(f"Unknown blob {info.digest}")
        # The manifest names layers by diffID, so compressed members are handed out decompressed.
        return DecompressingReader(self._open_member(layer.path)), layer.size  # type: ignore[return-value]

    def close(self) -> None:
        self._on_close()
