"""Which image of a list a host's skopeo or podman picks: the host's platform, as Go names it."""

from __future__ import annotations

from labcheck.checks.base import PlatformDigest
from labcheck.checks.trace import Trace
from labcheck.engine.format.platform import best_match, parse_platform, platform_of_machine, wanted_platforms


def go_platform(uname_m: str, os: str = "linux") -> str:
    """The os/arch[/variant] of a machine from `uname -m` (the engine's one table).

    >>> go_platform("x86_64"), go_platform("aarch64")
    ('linux/amd64', 'linux/arm64/v8')
    """
    return str(platform_of_machine(uname_m, os))


def platform_facts(uname_m: str) -> dict[str, str]:
    """The `arch` and `variant` facts templates see, as images name them ("" when uname -m is unknown).

    >>> platform_facts("aarch64"), platform_facts("x86_64")
    ({'arch': 'arm64', 'variant': 'v8'}, {'arch': 'amd64', 'variant': ''})
    """
    platform = platform_of_machine(uname_m)
    return {"arch": platform.architecture, "variant": platform.variant}


def host_platform(trace: Trace) -> str:
    """The platform of the host the check runs on (its `machine` fact, else asked with `uname -m`);
    linux/amd64 if it cannot tell."""
    machine = trace.ctx.facts.get("machine", "")
    if machine:
        return go_platform(machine)
    result = trace.run("uname -m")
    return go_platform(result.stdout) if result.rc == 0 and result.stdout.strip() else "linux/amd64"


def pick_instance(instances: list[PlatformDigest], platform: str) -> PlatformDigest | None:
    """The instance skopeo or podman on a host of `platform` picks (the engine's own choice).

    >>> entries = [PlatformDigest("sha256:a", "linux/amd64"), PlatformDigest("sha256:b", "linux/arm64/v8")]
    >>> pick_instance(entries, "linux/arm64/v8").digest, pick_instance(entries, "linux/arm64").digest
    ('sha256:b', 'sha256:b')
    >>> pick_instance(entries, "linux/s390x") is None
    True
    """
    wanted = wanted_platforms(host=parse_platform(platform))
    index = best_match([parse_platform(i.platform) for i in instances], wanted)
    return None if index is None else instances[index]
