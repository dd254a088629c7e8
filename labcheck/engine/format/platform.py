"""Platforms: the host's in Go's terms, and which instance of a list skopeo picks for one."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

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


# `uname -m` -> (GOARCH, variant): what Go's runtime and containers/image's CPU-variant detection
# (/proc/cpuinfo's "CPU architecture") call the machine. The one table for the engine and the checks.
UNAME_TO_GO: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "armv5tel": ("arm", "v5"), "i386": ("386", ""),
    "i686": ("386", ""), "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
}
# containers/image's compatibility table: most to least specific.
_COMPATIBLE_VARIANTS = {"arm": ["v7", "v6", "v5"], "arm64": ["v8"]}


def platform_of_machine(uname_m: str, os: str = "linux") -> Platform:
    """The platform of a machine from its `uname -m` (and OS), as Go names it.

    >>> str(platform_of_machine("x86_64")), str(platform_of_machine("aarch64")), str(platform_of_machine("armv6l"))
    ('linux/amd64', 'linux/arm64/v8', 'linux/arm/v6')
    """
    machine = uname_m.strip().lower()
    arch, variant = UNAME_TO_GO.get(machine, (machine, ""))
    return Platform(architecture=arch, os=os, variant=variant)


def parse_platform(text: str) -> Platform:
    """`os/arch[/variant]`, as docker and skopeo print a platform.

    >>> parse_platform("linux/arm64/v8")
    Platform(architecture='arm64', os='linux', variant='v8', os_version='', os_features=())
    """
    os, _, rest = text.partition("/")
    arch, _, variant = rest.partition("/")
    return Platform(architecture=arch, os=os, variant=variant)


def host_platform() -> Platform:
    """The platform of the machine labcheck runs on."""
    return platform_of_machine(_platform.machine(), _platform.system().lower())


def wanted_platforms(
    *, arch: str | None = None, os: str | None = None, variant: str | None = None, host: Platform | None = None
) -> list[Platform]:
    """The platforms acceptable for --override-arch/os/variant on host (default: this machine), best
    first. As in containers/image, the host's own variant counts only when the architecture is not overridden."""
    host = host or host_platform()
    want_arch = arch or host.architecture
    want_os = os or host.os
    want_variant = variant or ("" if arch else host.variant)
    if want_variant:
        order = _COMPATIBLE_VARIANTS.get(want_arch, [])
        variants = order[order.index(want_variant):] if want_variant in order else [want_variant]
        variants = variants + [""]
    else:
        variants = [""] + _COMPATIBLE_VARIANTS.get(want_arch, [])
    return [Platform(want_arch, want_os, v) for v in variants]


def best_match(candidates: Sequence[Platform | None], wanted: list[Platform]) -> int | None:
    """The index of the candidate containers/image picks for the wanted platforms (in order), or None."""
    for want in wanted:
        for index, candidate in enumerate(candidates):
            p = candidate or Platform("", "")
            if (p.architecture, p.os, p.variant) == (want.architecture, want.os, want.variant):
                return index
    return None


def choose_instance(
    listing: ManifestList, *, arch: str | None = None, os: str | None = None, variant: str | None = None,
    host: Platform | None = None,
) -> Instance:
    """The instance skopeo would pick for this platform, or NoMatchingPlatformError with its text."""
    wanted = wanted_platforms(arch=arch, os=os, variant=variant, host=host)
    index = best_match([inst.platform for inst in listing.instances], wanted)
    if index is not None:
        return listing.instances[index]
    first = wanted[0]
    raise NoMatchingPlatformError(
        f'no image found in manifest list for architecture {first.architecture}, '
        f'variant "{first.variant}", OS {first.os}',
        hint="choose another platform with --override-arch/--override-os/--override-variant, or copy --all",
    )
