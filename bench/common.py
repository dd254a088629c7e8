"""Shared helpers of the benchmarks: a lab world, a big image, and timing commands with their peak RSS."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from labcheck.labenv.world import LabWorld

MiB = 1 << 20


@dataclass
class Measure:
    label: str
    seconds: float
    peak_rss_mib: float
    nbytes: int

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


def timed(label: str, argv: list[str], env: dict[str, str], nbytes: int) -> Measure:
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
    return Measure(label, seconds, peak / 1024, nbytes)


def lab_world(state_dir: str | None) -> tuple[LabWorld, bool]:
    """The lab world to measure against: an existing one, else a fresh one (stopped at the end)."""
    world = LabWorld(state_dir or tempfile.mkdtemp(prefix="labcheck-bench-"))
    owned = not world.settings() or world.source.pid() is None
    print(f"bench: lab world in {world.state_dir}", file=sys.stderr)
    world.up(progress=lambda m: print(f"bench: {m}", file=sys.stderr))
    return world, owned


def push_big_image(world: LabWorld, repository: str, layer_bytes: int, workdir: Path) -> int:
    """A one-layer image whose layer is an uncompressed tar of `layer_bytes` random bytes; returns its size."""
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
    return layer_size


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
    print(f"{'path':<44} {'seconds':>8} {'MB/s':>8} {'peak RSS MiB':>13}")
    for row in rows:
        print(f"{row.label:<44} {row.seconds:8.2f} {row.mb_per_s:8.1f} {row.peak_rss_mib:13.1f}")
