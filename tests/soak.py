"""The soak: many copies through the fault proxy with random (seeded) faults, each outcome checked.

Every copy — registry→dir, registry→oci, registry→registry — must end either as a complete image whose
every blob matches its digest, or as one clear labcheck error (naming a blob or a URL) that left no
destination at all. Used by tests/integration/test_soak.py (small) and bench/bench_soak.py (large).
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from labcheck.engine.base.options import SideOptions
from labcheck.engine.registry.client import TOO_MANY_REQUESTS_RETRIES
from labcheck.engine.copy import copy_image
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.errors import LabcheckError
from labcheck.labenv.world import LabWorld
from tests.servers.fault_proxy import BlobStore, Fault, FaultProxy

HOSTILE_REPOSITORY = "hostile/fedora"  # on the lab's authenticated destination registry
DESTINATIONS = ("dir", "oci", "registry")
STALL = 0.5  # the client's stall timeout in the soak (seconds); the proxy drips slower than that
RETRY_TIMES = 2
# What the soak draws from: a label, and where it may strike.
SOAK_FAULTS: dict[str, tuple[str, ...]] = {
    "reset": ("layer", "config", "manifest"),
    "drip": ("layer", "config", "manifest"),
    "500": ("layer", "config", "manifest"),
    "502": ("layer", "config", "manifest"),
    "503": ("layer", "config", "manifest"),
    "429": ("layer", "config", "manifest"),
    "429+retry-after": ("layer", "manifest"),
    "truncate": ("layer", "config"),
    "corrupt": ("layer", "config"),
    "redirect": ("layer", "config"),
    "oversize": ("config", "manifest"),
}


@dataclass(frozen=True)
class SeededImage:
    """fedora:38 as the lab seeds it, pushed to HOSTILE_REPOSITORY on the destination registry."""

    manifest: bytes
    media_type: str
    config: str
    layer: str

    @property
    def manifest_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


def seed_hostile_image(world: LabWorld) -> SeededImage:
    """Push fedora:38 from the lab's source registry to its authenticated destination registry."""
    cert_dir = str(world.tls_dir / "cert-dir")
    copy_image(parse_image_reference(f"docker://{world.source_registry}/fedora:38"),
               parse_image_reference(f"docker://{world.dest_registry}/{HOSTILE_REPOSITORY}:38"),
               src_options=SideOptions(cert_dir=cert_dir),
               dst_options=SideOptions(cert_dir=cert_dir, creds=world.dest_credentials()))
    client = world.registry_client(world.dest_registry, HOSTILE_REPOSITORY)
    try:
        raw, media_type = client.get_manifest("38")
    finally:
        client.close()
    manifest = json.loads(raw)
    (layer,) = manifest["layers"]
    return SeededImage(raw, media_type, manifest["config"]["digest"], layer["digest"])


# --- what a destination holds --------------------------------------------------------------------------


def _hashes_to(file: Path, digest: str) -> bool:
    return file.is_file() and "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest() == digest


def dir_state(dest: Path, image: SeededImage) -> str:
    """"absent", "complete" (the image, every file digest-checked, nothing else) or "corrupt"."""
    if not dest.exists():
        return "absent"
    expected = {"version", "manifest.json", image.config.split(":")[1], image.layer.split(":")[1]}
    names = {entry.name for entry in dest.iterdir()}
    if names != expected or (dest / "manifest.json").read_bytes() != image.manifest:
        return "corrupt"
    if not all(_hashes_to(dest / digest.split(":")[1], digest) for digest in (image.config, image.layer)):
        return "corrupt"
    return "complete"


def verify_dir(dest: Path, image: SeededImage) -> None:
    assert dir_state(dest, image) == "complete", sorted(p.name for p in dest.iterdir()) if dest.exists() else dest


def oci_state(dest: Path, image: SeededImage) -> str:
    """"absent", "complete" (index → manifest → config and layer, each digest-checked) or "corrupt"."""
    if not dest.exists():
        return "absent"
    try:
        (entry,) = json.loads((dest / "index.json").read_text())["manifests"]
        blobs = dest / "blobs" / "sha256"
        manifest_file = blobs / entry["digest"].split(":")[1]
        if not _hashes_to(manifest_file, entry["digest"]):
            return "corrupt"
        manifest = json.loads(manifest_file.read_bytes())
        wanted = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    except (OSError, ValueError, KeyError):
        return "corrupt"
    names = {p.name for p in blobs.iterdir()}
    if [layer["digest"] for layer in manifest["layers"]] != [image.layer]:
        return "corrupt"
    if names != {d.split(":")[1] for d in [entry["digest"], *wanted]}:
        return "corrupt"
    return "complete" if all(_hashes_to(blobs / d.split(":")[1], d) for d in wanted) else "corrupt"


def registry_state(world: LabWorld, repository: str, image: SeededImage) -> str:
    """"absent" (no tag 38), "complete" (the manifest and every blob read back and digest-checked) or "corrupt"."""
    client = world.registry_client(world.dest_registry, repository)
    try:
        if client.manifest_digest("38") is None:
            return "absent"
        raw, _ = client.get_manifest("38")
        if raw != image.manifest:
            return "corrupt"
        for digest in (image.config, image.layer):
            reader, _ = client.get_blob(digest)
            with reader:
                data = reader.read()
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                return "corrupt"
        return "complete"
    finally:
        client.close()


# --- the soak ----------------------------------------------------------------------------------------------


@dataclass
class SoakReport:
    seed: int
    planned: int
    copies: int = 0
    injected: collections.Counter[str] = field(default_factory=collections.Counter)
    by_destination: collections.Counter[str] = field(default_factory=collections.Counter)
    completed: int = 0
    retried: int = 0  # completed although faults were injected (a redirect is no retry)
    failed_cleanly: int = 0
    partial_or_corrupt: int = 0
    unclear_errors: int = 0  # failures that were not one labcheck error naming a blob or URL
    credentials_leaked: int = 0  # requests that carried credentials to the redirect's other host
    slowest: tuple[float, str] = (0.0, "")
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def table(self) -> str:
        rows = [("seed", str(self.seed)),
                ("copies", f"{self.copies} of {self.planned} in {self.seconds:.1f}s ("
                 + ", ".join(f"{self.by_destination[d]} registry→{d}" for d in DESTINATIONS) + ")")]
        rows += [(f"faults injected: {kind}", str(self.injected[kind])) for kind in SOAK_FAULTS]
        rows += [("faults injected: total", str(sum(self.injected.values()))),
                 ("copies completed (digest-verified)", str(self.completed)),
                 ("  of which after faults (retried or redirected)", str(self.retried)),
                 ("copies failed cleanly (no destination)", str(self.failed_cleanly)),
                 ("partial or corrupt destinations", str(self.partial_or_corrupt)),
                 ("unclear errors", str(self.unclear_errors)),
                 ("credentials sent to another host", str(self.credentials_leaked)),
                 ("slowest copy", f"{self.slowest[0]:.2f}s ({self.slowest[1]})")]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def plan_faults(rng: random.Random, image: SeededImage) -> list[Fault]:
    """No fault for one copy in five; else one kind, on one target, for 1, 2 or all of its requests."""
    if rng.random() < 0.2:
        return []
    label = rng.choice(sorted(SOAK_FAULTS))
    target = rng.choice(SOAK_FAULTS[label])
    path = {"layer": image.layer, "config": image.config, "manifest": "/manifests/38"}[target]
    times = rng.choice([1, 1, 2, 99]) if label != "429+retry-after" else 1
    if label.startswith(("4", "5")):
        status = int(label[:3])
        return [Fault("status", path=path, times=times, status=status,
                      retry_after="1" if label == "429+retry-after" else None)]
    return [Fault(label, path=path, times=times)]


def should_complete(faults: list[Fault]) -> bool:
    """What a copy with these faults must end as: complete (retried past them), else a clean failure."""
    for fault in faults:
        if fault.kind == "redirect":
            continue
        if fault.label.startswith("429"):
            if fault.times > TOO_MANY_REQUESTS_RETRIES:
                return False
        elif fault.label not in ("reset", "drip", "502", "503") or fault.times > RETRY_TIMES:
            return False
    return True


def _clear(error: BaseException) -> bool:
    """One labcheck error that says which blob (digest), manifest or URL failed."""
    names = ("sha256:", "https://", "manifest 38 in ")
    return isinstance(error, LabcheckError) and any(name in error.message for name in names)


def run_soak(world: LabWorld, workdir: Path, *, copies: int, seed: int, time_budget: float,
             log=lambda line: None) -> SoakReport:
    """Up to `copies` copies (fewer if time_budget seconds run out), round robin over DESTINATIONS."""
    image = seed_hostile_image(world)
    rng = random.Random(seed)
    report = SoakReport(seed, copies)
    cert_dir = str(world.tls_dir / "cert-dir")
    started = time.monotonic()
    with BlobStore(tls_dir=world.tls_dir) as store, \
            FaultProxy(f"https://{world.dest_registry}", ca_file=world.tls_dir / "ca.crt",
                       tls_dir=world.tls_dir, store=store) as proxy:
        proxy.drip_gap = 3 * STALL
        source = parse_image_reference(f"docker://{proxy.address}/{HOSTILE_REPOSITORY}:38")
        src_options = SideOptions(creds=world.dest_credentials(), cert_dir=cert_dir, retry_times=RETRY_TIMES,
                                  retry_delay=0.05, stall_timeout=STALL)
        dst_options = SideOptions(creds=world.dest_credentials(), cert_dir=cert_dir)
        for n in range(copies):
            if time.monotonic() - started > time_budget:
                break
            kind = DESTINATIONS[n % len(DESTINATIONS)]
            faults = plan_faults(rng, image)
            proxy.clear()
            proxy.inject(*faults)
            before = collections.Counter(proxy.injected)
            name = f"soak-{uuid.uuid4().hex[:8]}"
            repository = f"soak-out/{name}"
            dest_text = {"dir": f"dir:{workdir / name}", "oci": f"oci:{workdir / name}:38",
                         "registry": f"docker://{world.dest_registry}/{repository}:38"}[kind]
            label = f"#{n} registry→{kind} " + (", ".join(f"{f.label}×{f.times}@{f.path[-19:]}" for f in faults)
                                                 or "no fault")
            copy_started = time.monotonic()
            error: BaseException | None = None
            try:
                copy_image(source, parse_image_reference(dest_text), src_options=src_options, dst_options=dst_options)
            except Exception as exc:  # judged below: a clear labcheck error, or a problem
                error = exc
            elapsed = time.monotonic() - copy_started
            injected = proxy.injected - before
            state = {"dir": lambda: dir_state(workdir / name, image), "oci": lambda: oci_state(workdir / name, image),
                     "registry": lambda: registry_state(world, repository, image)}[kind]()
            report.copies += 1
            report.by_destination[kind] += 1
            report.injected.update(injected)
            report.slowest = max(report.slowest, (elapsed, label))
            outcome = "completed" if error is None else f"failed: {getattr(error, 'message', error)}"
            if (error is None) != should_complete(faults):
                report.problems.append(f"{label}: {outcome}, but it should have "
                                       + ("completed" if should_complete(faults) else "failed"))
            if error is None and state == "complete":
                report.completed += 1
                report.retried += bool(injected)
            elif error is not None and state == "absent" and _clear(error):
                report.failed_cleanly += 1
            else:
                if state != ("complete" if error is None else "absent"):
                    report.partial_or_corrupt += 1
                if error is not None and not _clear(error):
                    report.unclear_errors += 1
                report.problems.append(f"{label}: {outcome}; destination {state}")
            log(f"{label}: {outcome} ({elapsed:.2f}s)")
            shutil.rmtree(workdir / name, ignore_errors=True)
        report.credentials_leaked = store.requests_with_credentials()
    report.seconds = time.monotonic() - started
    return report
