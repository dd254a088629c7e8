"""Platforms: the host's in Go's terms, and which instance of a list skopeo picks for one."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labcheck.errors import LabcheckError

if TYPE_CHECKING:
    from labcheck.engine.format.manifest import Instance, ManifestList


class NoMatchingPlatformError(LabcheckError):
    """No instance of a list matches the wanted platform; the message is skopeo's."""


@dataclass(frozen=True)
class Platform:
    architecture: str
    os: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x", "armv7l": "arm"}
# containers/image's compatibility table: most to least specific.
_COMPATIBLE_VARIANTS = {"arm": ["v7", "v6", "v5"], "arm64": ["v8"]}


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    return Platform(architecture=_GOARCH.get(machine, machine), os=_platform.system().lower())


def wanted_platforms(
    *, arch: str | None = None, os: str | None = None, variant: str | None = None
) -> list[Platform]:
    """The platforms acceptable for --override-arch/os/variant (or the host), best first."""
    host = host_platform()
    want_arch = arch or host.architecture
    want_os = os or host.os
    if variant:
        order = _COMPATIBLE_VARIANTS.get(want_arch, [])
        variants = order[order.index(variant):] if variant in order else [variant]
        variants = variants + [""]
    else:
        variants = [""] + _COMPATIBLE_VARIANTS.get(want_arch, [])
    return [Platform(want_arch, want_os, v) for v in variants]


def choose_instance(
    listing: ManifestList, *, arch: str | None = None, os: str | None = None, variant: str | None = None
) -> Instance:
    """The instance skopeo would pick for this platform, or NoMatchingPlatformError with its text."""
    wanted = wanted_platforms(arch=arch, os=os, variant=variant)
    for want in wanted:
        for inst in listing.instances:
            p = inst.platform or Platform("", "")
            if (p.architecture, p.os, p.variant) == (want.architecture, want.os, want.variant):
                return inst
    first = wanted[0]
    raise NoMatchingPlatformError(
        f'no image found in manifest list for architecture {first.architecture}, '
        f'variant "{first.variant}", OS {first.os}',
        hint="choose another platform with --override-arch/--override-os/--override-variant, or copy --all",
    )
