"""The host's programs the lab world runs, found by what they are, not by one distribution's names.

Debian calls the distribution registry `docker-registry`, Fedora `registry`; busybox lives in /bin,
/usr/bin or /usr/sbin; Fedora and RHEL ship crun and often no runc, while crun refuses a cgroup v1
hybrid hierarchy (as on this project's Debian machines). Each tool is looked up on PATH (then in its
usual places), the OCI runtime is chosen by running a container with it, and whatever is missing is
one line naming the package for apt and for dnf.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from labcheck.errors import UsageError

PROBE_TIMEOUT = 30.0
ELF_MAGIC = b"\x7fELF"
PT_INTERP = 3  # a program header naming the dynamic loader: the binary is not static


@dataclass(frozen=True)
class Tool:
    """A program the lab world needs: its names, where else it may live, and the packages that bring it."""

    what: str
    names: tuple[str, ...]
    apt: str
    dnf: str
    places: tuple[str, ...] = ()  # absolute paths tried after PATH

    def describe(self) -> str:
        return f"{self.what} ({' or '.join(self.names)}; apt install {self.apt} / dnf install {self.dnf})"


REGISTRY = Tool("the distribution registry", ("docker-registry", "registry"), apt="docker-registry",
                dnf="docker-distribution")
BUSYBOX = Tool("a static busybox", ("busybox",), apt="busybox-static", dnf="busybox",
               places=("/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox"))
DOCKERD = Tool("the Docker daemon", ("dockerd",), apt="docker.io", dnf="moby-engine")
PODMAN = Tool("podman", ("podman",), apt="podman", dnf="podman")
# podman's own order: crun first where it works.
RUNTIMES = (Tool("the OCI runtime crun", ("crun",), apt="crun", dnf="crun"),
            Tool("the OCI runtime runc", ("runc",), apt="runc", dnf="runc"))


class MissingToolError(UsageError):
    """A program the lab world needs is not on this machine: one line, exit 2."""


@dataclass(frozen=True)
class OciRuntime:
    name: str  # what containers.conf calls it
    path: Path


@dataclass(frozen=True)
class LabTools:
    """Everything `lab up` runs that differs between distributions, as found on this machine."""

    registry: Path
    busybox: Path
    runtime: OciRuntime
    cgroup_manager: str


def find(tool: Tool, *, path: str | None = None) -> Path | None:
    """The first of tool's names on PATH (or path), else the first of its usual places that is executable."""
    for name in tool.names:
        found = shutil.which(name, path=path)
        if found:
            return Path(found)
    for place in tool.places:
        if os.access(place, os.X_OK) and Path(place).is_file():
            return Path(place)
    return None


def require(tool: Tool, *, path: str | None = None) -> Path:
    found = find(tool, path=path)
    if found is None:
        raise MissingToolError(f"the lab world needs {tool.describe()}, not found on PATH")
    return found


def lab_tools(*, path: str | None = None) -> LabTools:
    """What `lab up` needs, checked before anything starts; every missing tool named in one line."""
    missing = [tool for tool in (REGISTRY, DOCKERD, PODMAN) if find(tool, path=path) is None]
    busybox = find(BUSYBOX, path=path)
    if busybox is None:
        missing.append(BUSYBOX)
    runtimes = [(tool, find(tool, path=path)) for tool in RUNTIMES]
    if not any(found for _, found in runtimes):
        missing.append(Tool("an OCI runtime", ("crun", "runc"), apt="runc", dnf="crun"))
    if missing:
        raise MissingToolError("the lab world needs " + ", ".join(tool.describe() for tool in missing)
                               + ", not found on PATH")
    assert busybox is not None
    if not is_static_elf(busybox):
        raise MissingToolError(f"the lab world needs {BUSYBOX.describe()}: {busybox} is dynamically linked "
                               "and cannot be the seed image's shell")
    return LabTools(registry=require(REGISTRY, path=path), busybox=busybox,
                    runtime=working_runtime(runtimes, busybox), cgroup_manager=cgroup_manager())


def working_runtime(candidates: list[tuple[Tool, Path | None]], busybox: Path) -> OciRuntime:
    """The first present runtime that runs a container here (crun refuses a cgroup v1 hybrid hierarchy)."""
    refusals = []
    for tool, found in candidates:
        if found is None:
            continue
        refusal = runtime_refusal(found, busybox)
        if refusal is None:
            return OciRuntime(tool.names[0], found)
        refusals.append(f"{tool.names[0]} ({found}): {refusal}")
    absent = [tool for tool, found in candidates if found is None]
    hint = ("install " + " or ".join(f"{tool.names[0]} (apt install {tool.apt} / dnf install {tool.dnf})"
                                     for tool in absent)) if absent else None
    raise MissingToolError("no OCI runtime can run a container on this machine: " + "; ".join(refusals), hint=hint)


def runtime_refusal(runtime: Path, busybox: Path) -> str | None:
    """None when runtime runs `busybox true` in a container of its own; else the last line it said."""
    container_id = f"labcheck-probe-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="labcheck-runtime-") as bundle:
        rootfs = Path(bundle) / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy2(busybox, rootfs / "bin" / "busybox")
        spec = subprocess.run([str(runtime), "spec"], cwd=bundle, capture_output=True, text=True)
        if spec.returncode != 0:
            return _last_line(spec.stderr)
        config_file = Path(bundle) / "config.json"
        config = json.loads(config_file.read_text())
        config["process"].update(args=["/bin/busybox", "true"], terminal=False)
        config_file.write_text(json.dumps(config))
        try:
            result = subprocess.run([str(runtime), "run", "--bundle", bundle, container_id],
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"no answer within {PROBE_TIMEOUT:.0f}s"
        finally:
            subprocess.run([str(runtime), "delete", "--force", container_id], capture_output=True)
    return None if result.returncode == 0 else _last_line(result.stderr or result.stdout)


def runc_stand_in(runtime: OciRuntime, bin_dir: Path, *, path: str | None = None) -> Path | None:
    """bin_dir holding `runc` -> runtime, for dockerd on a machine without runc; None when not needed.

    dockerd's BuildKit looks up a binary named `runc` when dockerd starts, whatever its default runtime
    (moby's builder-next), and refuses to start without one; crun speaks runc's command line.
    """
    if runtime.name == "runc" or shutil.which("runc", path=path):
        return None
    bin_dir.mkdir(parents=True, exist_ok=True)
    link = bin_dir / "runc"
    link.unlink(missing_ok=True)
    link.symlink_to(runtime.path)
    return bin_dir


def cgroup_manager(root: Path = Path("/")) -> str:
    """systemd when the machine runs systemd on the cgroup v2 unified hierarchy, else cgroupfs."""
    runs_systemd = (root / "run/systemd/system").is_dir()  # sd_booted()'s test
    unified = (root / "sys/fs/cgroup/cgroup.controllers").exists()
    return "systemd" if runs_systemd and unified else "cgroupfs"


def is_static_elf(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (statically linked)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(64)
            if len(header) < 64 or header[:4] != ELF_MAGIC:
                return False
            wide, endian = header[4] == 2, "<" if header[5] == 1 else ">"
            if wide:
                phoff, = struct.unpack_from(endian + "Q", header, 0x20)
                phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x36)
            else:
                phoff, = struct.unpack_from(endian + "I", header, 0x1C)
                phentsize, phnum = struct.unpack_from(endian + "HH", header, 0x2A)
            handle.seek(phoff)
            table = handle.read(phentsize * phnum)
    except OSError:
        return False
    types = [struct.unpack_from(endian + "I", table, i * phentsize)[0] for i in range(len(table) // phentsize)]
    return PT_INTERP not in types


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"
