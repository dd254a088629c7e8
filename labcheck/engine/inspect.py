"""`skopeo inspect` as data: the same fields, order and values, plus every platform of a list."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from labcheck.engine.base.errors import RegistryError
from labcheck.engine.base.interfaces import ImageSource, TagLister
from labcheck.engine.base.options import SideOptions
from labcheck.engine.format import gojson, imageconfig
from labcheck.engine.format.resolve import ResolvedImage, read_config, resolve_image
from labcheck.engine.format.manifest import (
    OCI_CONFIG,
    OCI_MANIFEST,
    ManifestList,
    manifest_digest,
    parse_manifest,
)
from labcheck.errors import LabcheckError

INDENT = "    "
TAGS_REFUSED = "Registry disallows tag list retrieval; skipping"


@dataclass
class ImageInspection:
    """skopeo's inspect output; None is JSON null. warnings are what skopeo would log, not output."""

    digest: str
    created: str | None
    docker_version: str
    labels: dict[str, str] | None
    architecture: str
    os: str
    layers: list[str]
    env: list[str] | None
    repo_tags: list[str] = field(default_factory=list)
    name: str = ""
    tag: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name:
            out["Name"] = self.name
        if self.tag:
            out["Tag"] = self.tag
        out.update(
            Digest=self.digest,
            RepoTags=self.repo_tags,
            Created=self.created,
            DockerVersion=self.docker_version,
            Labels=None if self.labels is None else gojson.sorted_map(self.labels),
            Architecture=self.architecture,
            Os=self.os,
            Layers=self.layers,
            Env=self.env,
        )
        return out

    def render(self) -> str:
        """Exactly what `skopeo inspect` prints."""
        return gojson.dumps(self.to_json(), indent=INDENT) + "\n"


@dataclass(frozen=True)
class PlatformEntry:
    """One instance of a list, for --all-platforms."""

    digest: str
    media_type: str
    size: int
    architecture: str
    os: str
    variant: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Digest": self.digest,
            "MediaType": self.media_type,
            "Size": self.size,
            "Architecture": self.architecture,
            "Os": self.os,
        }
        if self.variant:
            out["Variant"] = self.variant
        return out


def render_json(value: Any) -> str:
    """Any JSON value the way skopeo prints it (4-space indent, Go escaping, trailing newline)."""
    return gojson.dumps(value, indent=INDENT) + "\n"


def _config_fields(resolved: ResolvedImage, source: ImageSource) -> dict[str, Any]:
    """The inspect fields that come from the config (or, for schema1, from the newest history entry)."""
    m = resolved.manifest
    if m.config is None:
        blob: Any = json.loads(m.v1_history[0]) if m.v1_history else {}
    else:
        if m.media_type == OCI_MANIFEST and m.config.media_type != OCI_CONFIG:
            raise LabcheckError(
                "unsupported image-specific operation on artifact with type "
                f"{json.dumps(m.config.media_type)}"
            )
        blob = imageconfig.parse_config(read_config(source, m.config))
    docker = imageconfig.decode(blob, imageconfig.DOCKER_IMAGE)
    if m.media_type == OCI_MANIFEST:
        oci = imageconfig.decode(blob, imageconfig.OCI_IMAGE)
        cfg = oci["config"] or {}
        return dict(
            created=oci["created"],  # a pointer in Go: null when absent
            docker_version=docker["docker_version"] or "",
            labels=cfg.get("Labels"),
            env=cfg.get("Env"),
            architecture=oci["architecture"] or "",
            os=oci["os"] or "",
        )
    cfg = docker["config"]
    return dict(
        created=docker["created"] or "0001-01-01T00:00:00Z",  # a Go time.Time value, never null
        docker_version=docker["docker_version"] or "",
        labels=None if cfg is None else cfg["Labels"],
        env=None if cfg is None else cfg["Env"],
        architecture=docker["architecture"] or "",
        os=docker["os"] or "",
    )


def inspect_image(
    source: ImageSource,
    options: SideOptions | None = None,
    *,
    list_tags: bool = True,
    name: str = "",
) -> ImageInspection:
    """What `skopeo inspect` reports: Digest of the top-level manifest, the rest from the chosen instance.

    name is the Docker reference name (skopeo shows it, and lists tags, only for docker:// images).
    """
    resolved = resolve_image(source, options)
    fields = _config_fields(resolved, source)
    result = ImageInspection(
        digest=manifest_digest(resolved.top_raw),
        layers=[layer.digest for layer in resolved.manifest.layers],
        name=name,
        **fields,
    )
    if list_tags and name and isinstance(source, TagLister):
        try:
            result.repo_tags = source.list_tags()
        except RegistryError as exc:
            denied = any(d.get("code") == "DENIED" for d in exc.diagnostics)
            if not (denied or exc.status in (401, 403, 404)):
                raise LabcheckError(f"Error determining repository tags: {exc.message}", hint=exc.hint) from exc
            result.warnings.append(TAGS_REFUSED)
    return result


def raw_manifest(source: ImageSource) -> bytes:
    """`inspect --raw`: the top-level manifest bytes exactly as stored."""
    return source.get_manifest()[0]


def raw_config(source: ImageSource, options: SideOptions | None = None) -> bytes:
    """`inspect --config --raw`: the chosen image's config blob exactly as stored."""
    resolved = resolve_image(source, options)
    if resolved.manifest.config is None:
        raise LabcheckError("schema1 images have no config blob")
    return read_config(source, resolved.manifest.config)


def oci_config(source: ImageSource, options: SideOptions | None = None) -> dict[str, Any]:
    """`inspect --config`: the chosen image's config as OCI, in image-spec's field order."""
    return imageconfig.oci_config(raw_config(source, options))


def inspect_platforms(source: ImageSource) -> list[PlatformEntry]:
    """Every instance of a list with its own digest and platform; a single image gives one entry."""
    raw, media_type = source.get_manifest()
    parsed = parse_manifest(raw, media_type)
    if isinstance(parsed, ManifestList):
        return [
            PlatformEntry(
                inst.digest,
                inst.media_type,
                inst.size,
                inst.platform.architecture if inst.platform else "",
                inst.platform.os if inst.platform else "",
                inst.platform.variant if inst.platform else "",
            )
            for inst in parsed.instances
        ]
    resolved = resolve_image(source)
    fields = _config_fields(resolved, source)
    return [PlatformEntry(manifest_digest(raw), resolved.media_type, len(raw), fields["architecture"], fields["os"])]
