"""Shared helpers of the benchmarks: a lab world, a big image, and timing commands with their peak RSS."""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from labcheck.labenv.world import LabWorld

MiB = 1 << 20


@dataclass
class Measure:
    label: str
    seconds: float
    peak_rss_mib: float
    nbytes: int
    tool: str = ""  # "skopeo", "labcheck", "curl"
    path: str = ""  # "registry→dir", …

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def timed(label: str, argv: list[str], env: dict[str, str], nbytes: int, *, tool: str = "", path: str = "") -> Measure:
    """Run argv to completion; wall time and its peak RSS.

    The peak is VmHWM sampled every 20 ms: ru_maxrss would carry over the benchmark's own
    (larger) peak, since Linux keeps it across fork and exec.
    """
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _vm_hwm_kib(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{label} failed: {stderr[-1000:]}")
    return Measure(label, seconds, peak / 1024, nbytes, tool, path)


def lab_world(state_dir: str | None) -> tuple[LabWorld, bool]:
    """The lab world to measure against: an existing one, else a fresh one (stopped at the end)."""
    world = LabWorld(state_dir or tempfile.mkdtemp(prefix="labcheck-bench-"))
    owned = not world.settings() or world.source.pid() is None
    print(f"bench: lab world in {world.state_dir}", file=sys.stderr)
    world.up(progress=lambda m: print(f"bench: {m}", file=sys.stderr))
    return world, owned


@dataclass
class CopyBench:
    """What a copy benchmark measures with: its arguments, the lab world, a work directory, the tools' env."""

    args: argparse.Namespace
    world: LabWorld
    owned: bool  # the benchmark started the lab world, so it stops it
    workdir: Path
    env: dict[str, str]

    def close(self) -> None:
        """Remove the work directory, and the lab world when the benchmark started it."""
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.owned and not self.args.state_dir:
            self.world.down()
            shutil.rmtree(self.world.state_dir, ignore_errors=True)


def copy_bench(description: str | None, *, size_mib: int = 1024,
               more_flags: Callable[[argparse.ArgumentParser], None] | None = None) -> CopyBench:
    """--size-mib, --rounds and --state-dir (and more_flags') parsed; the lab world up; a fresh work directory."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size-mib", type=int, default=size_mib)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--state-dir")
    if more_flags is not None:
        more_flags(parser)
    args = parser.parse_args()
    world, owned = lab_world(args.state_dir)
    return CopyBench(args, world, owned, Path(tempfile.mkdtemp(prefix="labcheck-bench-")), {**os.environ, **world.env()})


@dataclass
class BigImage:
    layer_size: int
    layer_digest: str


def push_big_image(world: LabWorld, repository: str, layer_bytes: int, workdir: Path) -> BigImage:
    """A one-layer image whose layer is an uncompressed tar of `layer_bytes` random bytes (made once per world)."""
    existing = _existing_big_image(world, repository, layer_bytes)
    if existing is not None:
        return existing
    layer_path = workdir / "layer.tar"
    digest = hashlib.sha256()
    with open(layer_path, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("data.bin")
            info.size = layer_bytes
            tar.addfile(info, _RandomReader(layer_bytes))
    with open(layer_path, "rb") as handle:
        for chunk in iter(lambda: handle.read(8 * MiB), b""):
            digest.update(chunk)
    layer_digest, layer_size = "sha256:" + digest.hexdigest(), layer_path.stat().st_size
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "size": layer_size,
                    "digest": layer_digest}],
    }).encode()
    client = world.registry_client(world.source_registry, repository, push=True)
    try:
        if client.blob_size(layer_digest) is None:
            with open(layer_path, "rb") as handle:
                client.upload_blob(iter(lambda: handle.read(8 * MiB), b""), layer_digest)
        client.upload_blob(iter([config]), config_digest)
        client.put_manifest("latest", manifest, "application/vnd.docker.distribution.manifest.v2+json")
    finally:
        client.close()
    layer_path.unlink()
    return BigImage(layer_size, layer_digest)


def _existing_big_image(world: LabWorld, repository: str, layer_bytes: int) -> BigImage | None:
    client = world.registry_client(world.source_registry, repository)
    try:
        if client.manifest_digest("latest") is None:
            return None
        layer = json.loads(client.get_manifest("latest")[0])["layers"][0]
    finally:
        client.close()
    if layer["size"] < layer_bytes or layer["size"] > layer_bytes + 10240:  # a tar: header and padding
        return None
    return BigImage(layer["size"], layer["digest"])


def auth_file(world: LabWorld, workdir: Path) -> Path:
    creds = world.creds_file.read_text().strip()
    path = workdir / "auth.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"auths": {world.dest_registry: {"auth": base64.b64encode(creds.encode()).decode()}}}, handle)
    return path


class _RandomReader(io.RawIOBase):
    """Incompressible bytes without holding them: urandom in 8 MiB pieces."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left, 8 * MiB)
        self.left -= n
        return os.urandom(n)


def print_table(rows: list[Measure]) -> None:
    print(f"{'path':<52} {'seconds':>8} {'MB/s':>8} {'peak RSS MiB':>13}")
    for row in rows:
        print(f"{row.label:<52} {row.seconds:8.2f} {row.mb_per_s:8.1f} {row.peak_rss_mib:13.1f}")


def print_summary(rows: list[Measure], paths: list[str]) -> None:
    """Best and median throughput per tool and path, and labcheck's ratio to skopeo (best against best)."""
    print(f"{'path':<33} {'tool':<9} {'runs':>4} {'best MB/s':>10} {'median MB/s':>12} {'peak RSS MiB':>13}")
    for path in paths:
        best: dict[str, Measure] = {}
        for tool in ("curl", "skopeo", "labcheck"):
            runs = [r for r in rows if r.path == path and r.tool == tool]
            if not runs:
                continue
            best[tool] = max(runs, key=lambda r: r.mb_per_s)
            print(f"{path:<33} {tool:<9} {len(runs):>4} {best[tool].mb_per_s:10.1f} "
                  f"{statistics.median(r.mb_per_s for r in runs):12.1f} {max(r.peak_rss_mib for r in runs):13.1f}")
        if "skopeo" in best and "labcheck" in best:
            ratio = best["labcheck"].mb_per_s / best["skopeo"].mb_per_s
            print(f"{path:<33} labcheck/skopeo = {ratio:.2f}x (goal ≥ 1.25), "
                  f"labcheck peak RSS {best['labcheck'].peak_rss_mib:.0f} MiB (goal ≤ 100)")


def skopeo_command(*args: str) -> list[str]:
    """skopeo with an empty blob-info cache of its own, when a private mount namespace is possible.

    skopeo remembers (in /var/lib/containers/cache) where it pushed a blob before and then mounts it
    from that repository instead of uploading: a later round would measure a 0.1 s HEAD+mount.
    labcheck keeps no such cache, so each skopeo run gets a fresh one on a tmpfs.
    """
    argv = ["skopeo", *args]
    if _private_cache_works():
        return ["unshare", "-m", "sh", "-c",
                f"mount -t tmpfs none {SKOPEO_CACHE} && exec \"$@\"", "sh", *argv]
    print("bench: warning: skopeo runs with its blob-info cache (registry→registry may be skipped)",
          file=sys.stderr)
    return argv


SKOPEO_CACHE = "/var/lib/containers/cache"


def _private_cache_works() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not os.path.isdir(SKOPEO_CACHE):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs none {SKOPEO_CACHE}"],
                           capture_output=True)
    return probe.returncode == 0


def curl_blob(world: LabWorld, repository: str, digest: str, nbytes: int, label: str) -> Measure:
    """The ceiling: curl reading the blob from the source registry (lab CA) into /dev/null."""
    url = f"https://{world.source_registry}/v2/{repository}/blobs/{digest}"
    argv = ["curl", "-sfL", "--cacert", str(world.tls_dir / "ca.crt"), "-o", "/dev/null", url]
    return timed(label, argv, dict(os.environ), nbytes, tool="curl", path="registry→dir")
