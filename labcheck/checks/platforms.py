"""Which image of a list a host's skopeo or podman picks: the host's platform, as Go names it."""

from __future__ import annotations

from labcheck.checks.base import PlatformDigest
from labcheck.checks.trace import Trace

# uname -m -> (GOARCH, variant) as containers/image names them.
_UNAME_TO_GO = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i386": ("386", ""), "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
}


def go_platform(uname_m: str, os: str = "linux") -> str:
    """The os/arch[/variant] of a machine from `uname -m`.

    >>> go_platform("x86_64"), go_platform("aarch64")
    ('linux/amd64', 'linux/arm64/v8')
    """
    arch, variant = _UNAME_TO_GO.get(uname_m.strip(), (uname_m.strip(), ""))
    return "/".join(p for p in (os, arch, variant) if p)


def platform_facts(uname_m: str) -> dict[str, str]:
    """The `arch` and `variant` facts templates see, as images name them ("" when uname -m is unknown).

    >>> platform_facts("aarch64"), platform_facts("x86_64")
    ({'arch': 'arm64', 'variant': 'v8'}, {'arch': 'amd64', 'variant': ''})
    """
    arch, variant = _UNAME_TO_GO.get(uname_m.strip(), (uname_m.strip(), ""))
    return {"arch": arch, "variant": variant}


def host_platform(trace: Trace) -> str:
    """The platform of the host the check runs on (its `machine` fact, else asked with `uname -m`);
    linux/amd64 if it cannot tell."""
    machine = trace.ctx.facts.get("machine", "")
    if machine:
        return go_platform(machine)
    result = trace.run("uname -m")
    return go_platform(result.stdout) if result.rc == 0 and result.stdout.strip() else "linux/amd64"


def pick_instance(instances: list[PlatformDigest], platform: str) -> PlatformDigest | None:
    """The instance a tool on `platform` picks: same os and arch, the exact variant first, else none given.

    >>> entries = [PlatformDigest("sha256:a", "linux/amd64"), PlatformDigest("sha256:b", "linux/arm64/v8")]
    >>> pick_instance(entries, "linux/arm64/v8").digest, pick_instance(entries, "linux/arm64").digest
    ('sha256:b', 'sha256:b')
    >>> pick_instance(entries, "linux/s390x") is None
    True
    """
    os, arch, *rest = platform.split("/") + [""]
    variant = rest[0] if rest else ""
    same_arch = [i for i in instances if i.platform.split("/")[:2] == [os, arch]]
    for instance in same_arch:
        if instance.platform == platform or (not variant and instance.platform == f"{os}/{arch}"):
            return instance
    return same_arch[0] if same_arch else None
