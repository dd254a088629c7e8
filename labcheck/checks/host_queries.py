"""RegistryQueries answered by skopeo on the host itself: for a host whose registries only it can reach
(a VM's own lab world, listening on the VM's loopback)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from labcheck.checks.base import PlatformDigest
from labcheck.engine.base.options import Credentials, SideOptions
from labcheck.engine.skopeo_driver import SkopeoDriver


@dataclass(frozen=True)
class HostQueries:
    """The same questions as EngineQueries, asked with the host's skopeo and the host's environment."""

    skopeo: SkopeoDriver

    def _options(self, creds: str | None) -> SideOptions:
        return SideOptions(creds=Credentials.parse(creds) if creds else None)

    def manifest_digest(self, ref: str, *, creds: str | None = None) -> str:
        """skopeo inspect's Digest: the top-level manifest's (a list's own for a list)."""
        return self.inspect(ref, creds=creds)["Digest"]

    def inspect(self, ref: str, *, creds: str | None = None) -> dict[str, Any]:
        return self.skopeo.inspect(ref, options=self._options(creds), list_tags=False).to_json()

    def instances(self, ref: str, *, creds: str | None = None) -> list[PlatformDigest]:
        raw = json.loads(self.skopeo.raw_manifest(ref, options=self._options(creds)))
        if isinstance(raw.get("manifests"), list):
            return [PlatformDigest(entry["digest"], "/".join(p for p in (
                entry.get("platform", {}).get("os", ""), entry.get("platform", {}).get("architecture", ""),
                entry.get("platform", {}).get("variant", "")) if p)) for entry in raw["manifests"]]
        info = self.inspect(ref, creds=creds)
        platform = "/".join(p for p in (info.get("Os", ""), info.get("Architecture", ""), info.get("Variant", "")) if p)
        return [PlatformDigest(info["Digest"], platform)]
