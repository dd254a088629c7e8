"""Acceptance tests of "The engine, part two", on the real lab world against the real skopeo 1.9:

- every transport to every transport (7 x 7 ordered pairs), and the `--all` pairs skopeo refuses;
- a round trip through six transports that keeps the image;
- the lab page's Podman-to-Docker move done by the engine;
- `labcheck inspect` printing what `skopeo inspect` prints on every transport, and skopeo's archives of the
  seed read (and rewritten) by labcheck, skopeo reading them back;
- the native engine and the skopeo driver agreeing on inspect and copy for every local transport.

Each source is built once (the seed copied into each transport by labcheck) and shared by the module.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import testinfra

from labcheck.engine import inspect as engine_inspect
from labcheck.engine.api import NativeDriver
from labcheck.engine.format.digest import sha256_digest
from labcheck.engine.base.options import SideOptions
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.engine.skopeo_driver import SkopeoDriver
from labcheck.engine.transports import open_source
from labcheck.labenv.world import LabWorld
from labcheck.environ import scoped_environ

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not (shutil.which("skopeo") and shutil.which("podman") and shutil.which("docker")),
                       reason="needs skopeo, podman and docker"),
]

TRANSPORTS = ("docker", "dir", "oci", "docker-archive", "oci-archive", "docker-daemon", "containers-storage")
# skopeo converts a docker config to OCI's (new bytes, new digest) when it writes an OCI manifest;
# an OCI config stays as it is, whatever the destination.
OCI_DESTINATIONS = {"oci", "oci-archive"}
# Transports that can hold a manifest list, and those skopeo refuses `copy --all` into.
LIST_HOLDERS = ("docker", "dir", "oci", "oci-archive")
SINGLE_ONLY = ("docker-archive", "docker-daemon", "containers-storage")
PAIRS = [(src, dst) for src in TRANSPORTS for dst in TRANSPORTS]


@dataclass(frozen=True)
class Seed:
    """The lab's fedora (the amd64 image of the `latest` list), as skopeo sees it."""

    config_digest: str  # its docker config
    oci_config_digest: str  # the same config once skopeo wrote it as OCI's
    diff_ids: list[str]
    config_view: dict[str, Any]  # `skopeo inspect --config`: the OCI view, the same for both configs


class World:
    """The lab world seen from these tests: references of each transport, and the tools run in its environment."""

    def __init__(self, lab: LabWorld, root: Path) -> None:
        self.lab = lab
        self.root = root
        self.env = {**os.environ, **lab.env()}
        self.prefix = f"matrix-{uuid.uuid4().hex[:8]}"  # names in shared stores are this run's own
        self.daemon_host = f"unix://{lab.docker_socket}"
        creds = lab.dest_credentials()
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        self.authfile = root / "auth.json"  # the password never goes onto a command line
        fd = os.open(self.authfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"auths": {lab.dest_registry: {"auth": token}}}, out)
        self.seed_ref = f"docker://{lab.source_registry}/fedora"

    # --- references ---------------------------------------------------------------------------

    def ref(self, transport: str, name: str) -> str:
        if transport == "docker":
            return f"docker://{self.lab.dest_registry}/{self.prefix}/{name}:1"
        if transport == "dir":
            return f"dir:{self.root / name}"
        if transport == "oci":
            return f"oci:{self.root / name}-layout:fedora"
        if transport == "docker-archive":
            return f"docker-archive:{self.root / name}.tar:{self.prefix}/{name}:1"
        if transport == "oci-archive":
            return f"oci-archive:{self.root / name}-oci.tar:fedora"
        if transport in ("docker-daemon", "containers-storage"):
            return f"{transport}:{self.prefix}/{name}:1"
        raise AssertionError(transport)

    def flags(self, ref: str, side: str = "") -> list[str]:
        """What skopeo (and labcheck) need for this reference: creds for the dest registry, the daemon's address."""
        if ref.startswith(f"docker://{self.lab.dest_registry}/"):
            return [f"--{side}authfile", str(self.authfile)]
        if ref.startswith("docker-daemon:"):
            return [f"--{side}daemon-host", self.daemon_host]
        return []

    def options(self, ref: str) -> SideOptions:
        return SideOptions(authfile=str(self.authfile)) if ref.startswith("docker://") else SideOptions()

    # --- tools ---------------------------------------------------------------------------------

    def run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(argv, capture_output=True, env=self.env, timeout=300)
        if check:
            assert proc.returncode == 0, f"{' '.join(argv[:3])}…: {proc.stderr.decode()[-2000:]}"
        return proc

    def labcheck(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return self.run([sys.executable, "-m", "labcheck.cli", *args], check=check)

    def skopeo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return self.run(["skopeo", "--insecure-policy", *args], check=check)

    def copy(self, src: str, dst: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return self.labcheck("copy", "-q", *extra, *self.flags(src, "src-"), *self.flags(dst, "dest-"), src, dst,
                             check=check)

    def skopeo_copy(self, src: str, dst: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return self.skopeo("copy", "-q", *extra, *self.flags(src, "src-"), *self.flags(dst, "dest-"), src, dst,
                           check=check)

    def skopeo_inspect(self, ref: str, *mode: str) -> bytes:
        return self.skopeo("inspect", *mode, *self.flags(ref), ref).stdout

    def engine_view(self, ref: str) -> tuple[bytes, bytes, str]:
        """(raw manifest, raw config, `inspect` output) of ref, read by labcheck's engine in-process."""
        parsed = parse_image_reference(ref)
        options = self.options(ref)
        with scoped_environ(self.lab.env()):
            source = open_source(parsed, options)
            try:
                named = parsed.docker_reference
                rendered = engine_inspect.inspect_image(source, options, name=named.name if named else "").render()
                return engine_inspect.raw_manifest(source), engine_inspect.raw_config(source, options), rendered
            finally:
                source.close()

    def cleanup(self) -> None:
        """Remove this run's images from the lab's dockerd and podman store."""
        listed = self.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], check=False).stdout.decode()
        names = [n for n in listed.split() if n.startswith(f"{self.prefix}/")]
        if names:
            self.run(["docker", "rmi", "-f", *names], check=False)
        listed = self.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], check=False).stdout.decode()
        names = [n for n in listed.split() if f"/{self.prefix}/" in n]
        if names:
            self.run(["podman", "rmi", "-f", *names], check=False)


@pytest.fixture(scope="module")
def world(lab_world: LabWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(lab_world, tmp_path_factory.mktemp("matrix"))
    yield w
    w.cleanup()


@pytest.fixture(scope="module")
def seed(world: World) -> Seed:
    raw_config = world.skopeo_inspect(world.seed_ref, "--config", "--raw")
    config = json.loads(raw_config)
    assert config["architecture"] == "amd64"
    converted = f"oci:{world.root / 'skopeo-oci'}:fedora"
    world.skopeo_copy(world.seed_ref, converted)
    oci_config = world.skopeo_inspect(converted, "--config", "--raw")
    view = json.loads(world.skopeo_inspect(world.seed_ref, "--config"))
    assert json.loads(world.skopeo_inspect(converted, "--config")) == view
    return Seed(sha256_digest(raw_config), sha256_digest(oci_config), config["rootfs"]["diff_ids"], view)


@pytest.fixture(scope="module")
def sources(world: World) -> dict[str, str]:
    """The seed copied by labcheck into each of the seven transports, once for the module."""
    refs = {transport: world.ref(transport, f"src-{transport}") for transport in TRANSPORTS}
    for ref in refs.values():
        world.copy(world.seed_ref, ref)
    return refs


@pytest.fixture(scope="module")
def list_sources(world: World) -> dict[str, str]:
    """The seed's whole multi-arch list copied (`--all`) into each transport that can hold a list."""
    refs = {transport: world.ref(transport, f"list-{transport}") for transport in LIST_HOLDERS}
    for ref in refs.values():
        world.copy(world.seed_ref, ref, "--all")
    return refs


def expected_config(seed: Seed, src: str, dst: str) -> str:
    converted = src in OCI_DESTINATIONS or dst in OCI_DESTINATIONS
    return seed.oci_config_digest if converted else seed.config_digest


def assert_is_the_seed(world: World, seed: Seed, ref: str, config_digest: str) -> None:
    """ref holds the seed's amd64 image; labcheck and skopeo read it alike."""
    manifest, config, rendered = world.engine_view(ref)
    assert sha256_digest(config) == config_digest
    assert json.loads(config)["rootfs"]["diff_ids"] == seed.diff_ids
    assert json.loads(manifest)["config"]["digest"] == config_digest
    # skopeo reads it too, and sees what labcheck sees
    assert world.skopeo_inspect(ref, "--config", "--raw") == config
    assert world.skopeo_inspect(ref).decode() == rendered
    assert json.loads(rendered)["Labels"]["vendor"] == "Fedora Project"


# --- 1. every transport to every transport ---------------------------------------------------------


def test_sources_hold_the_seed(world: World, seed: Seed, sources: dict[str, str]) -> None:
    for transport, ref in sources.items():
        assert_is_the_seed(world, seed, ref, expected_config(seed, "docker", transport))


@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{s}->{d}" for s, d in PAIRS])
def test_copy_between_transports(world: World, seed: Seed, sources: dict[str, str], src: str, dst: str) -> None:
    target = world.ref(dst, f"{src}-to-{dst}")
    proc = world.copy(sources[src], target)
    assert proc.stdout == b""
    assert_is_the_seed(world, seed, target, expected_config(seed, src, dst))


ALL_PAIRS = [(src, dst) for src in LIST_HOLDERS for dst in TRANSPORTS]


@pytest.mark.parametrize("src,dst", ALL_PAIRS, ids=[f"{s}->{d}" for s, d in ALL_PAIRS])
def test_copy_all_between_transports(world: World, list_sources: dict[str, str], src: str, dst: str) -> None:
    """`copy --all` of a list: kept whole where the destination can hold a list, else refused as skopeo refuses."""
    target = world.ref(dst, f"all-{src}-to-{dst}")
    proc = world.copy(list_sources[src], target, "--all", check=False)
    if dst in SINGLE_ONLY:
        theirs = world.skopeo_copy(list_sources[src], world.ref(dst, f"all-skopeo-{src}-to-{dst}"), "--all",
                                   check=False)
        assert proc.returncode == theirs.returncode == 1
        message = _skopeo_message(theirs.stderr)
        assert message == f'copying multiple images: destination transport "{dst}" does not support copying ' \
                          "multiple images as a group"
        lines = proc.stderr.decode().strip().splitlines()
        assert lines[0] == f"labcheck copy: {message}"  # skopeo's text alone on the first line, the hint below
        assert len(lines) == 2 and lines[1].startswith("hint: ")
        _assert_absent(world, target)
        return
    assert proc.returncode == 0, proc.stderr.decode()
    raw = json.loads(world.skopeo_inspect(target, "--raw"))
    assert raw["mediaType"].endswith(("manifest.list.v2+json", "image.index.v1+json"))
    assert sorted(m["platform"]["architecture"] for m in raw["manifests"]) == ["amd64", "arm64"]
    manifest, _, rendered = world.engine_view(target)
    assert json.loads(manifest) == raw
    assert world.skopeo_inspect(target).decode() == rendered


def _skopeo_message(stderr: bytes) -> str:
    match = re.search(r'msg="((?:[^"\\]|\\.)*)"', stderr.decode())
    assert match, stderr.decode()
    return match.group(1).replace('\\"', '"')


def _assert_absent(world: World, ref: str) -> None:
    """Nothing was written at ref."""
    transport, _, rest = ref.partition(":")
    if transport == "docker-archive":
        assert not Path(rest.split(":", 1)[0]).exists()
    elif transport == "docker-daemon":
        assert world.run(["docker", "images", "-q", rest]).stdout.strip() == b""
    elif transport == "containers-storage":
        assert world.run(["podman", "image", "exists", rest], check=False).returncode == 1
    else:
        raise AssertionError(ref)


# --- 2. a round trip through six transports ---------------------------------------------------------


def test_round_trip_keeps_the_image(world: World, seed: Seed, tmp_path: Path) -> None:
    chain = [
        world.seed_ref,
        world.ref("containers-storage", "round-trip"),
        world.ref("docker-daemon", "round-trip"),
        f"docker-archive:{tmp_path / 'rt.tar'}:{world.prefix}/round-trip:1",
        f"oci-archive:{tmp_path / 'rt-oci.tar'}:fedora",
        f"dir:{tmp_path / 'rt-dir'}",
        world.ref("docker", "round-trip"),
    ]
    for src, dst in zip(chain, chain[1:]):
        world.copy(src, dst)
    first, last = chain[0], chain[-1]
    first_config = json.loads(world.skopeo_inspect(first, "--config", "--raw"))
    last_config_raw = world.skopeo_inspect(last, "--config", "--raw")
    last_config = json.loads(last_config_raw)
    assert last_config["rootfs"]["diff_ids"] == first_config["rootfs"]["diff_ids"] == seed.diff_ids
    # The config went through oci-archive: OCI's bytes now (as skopeo writes them), the same content.
    assert sha256_digest(last_config_raw) == seed.oci_config_digest
    assert json.loads(world.skopeo_inspect(last, "--config")) == json.loads(world.skopeo_inspect(first, "--config"))
    last_manifest = json.loads(world.skopeo_inspect(last, "--raw"))
    assert last_manifest["config"]["digest"] == seed.oci_config_digest
    # The layers, pulled back by skopeo, are the same tars: each uncompresses to its diffID.
    pulled = tmp_path / "pulled"
    world.skopeo_copy(last, f"dir:{pulled}")
    layers = [(pulled / layer["digest"].split(":")[1]).read_bytes() for layer in last_manifest["layers"]]
    assert [sha256_digest(_uncompressed(layer)) for layer in layers] == seed.diff_ids


def _uncompressed(blob: bytes) -> bytes:
    if blob[:2] == b"\x1f\x8b":
        return gzip.decompress(blob)
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        pytest.fail("zstd layers are not expected here")
    return blob


# --- 3. the lab page's Podman-to-Docker move, by the engine -------------------------------------------


def test_podman_to_docker_move_after_podman_run(world: World) -> None:
    source = f"{world.lab.source_registry}/fedora"
    container = f"{world.prefix}-meta-data-container"
    # as the lab page does: `podman run` pulls the image into container storage (--pull always: whatever an
    # earlier test left in the store, this run pulls it)
    world.run(["podman", "run", "--pull", "always", "--name", container, "-id", source, "bash"])
    try:
        state = json.loads(world.run(["podman", "inspect", container]).stdout)[0]
        assert state["State"]["Running"] is True
        assert state["ImageName"] == f"{source}:latest"
        world.run(["docker", "rmi", f"{source}:latest"], check=False)  # the move, not an earlier one, must list it
        world.labcheck("copy", f"containers-storage:{source}", f"docker-daemon:{source}:latest")
        podman_id = world.run(["podman", "image", "inspect", "--format", "{{.Id}}", source]).stdout.decode().strip()
        assert podman_id == state["Image"]
        listed = world.run(["docker", "images", "--no-trunc", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"])
        assert f"{source} latest sha256:{podman_id}" in listed.stdout.decode().splitlines()
        assert world.skopeo_inspect(f"docker-daemon:{source}:latest") == \
            world.labcheck("inspect", f"docker-daemon:{source}:latest").stdout
    finally:
        world.run(["podman", "rm", "-f", "-t", "0", container], check=False)


# --- 4. interop with the real skopeo, both ways, for the archives -------------------------------------


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_skopeo_written_archive_of_the_seed_reads_the_same(world: World, seed: Seed, transport: str,
                                                          tmp_path: Path) -> None:
    """skopeo writes the seed's archive, labcheck reads it and copies it on; skopeo reads labcheck's copy."""
    name = "fedora" if transport == "oci-archive" else f"{world.prefix}/fedora:38"
    theirs = f"{transport}:{tmp_path / 'skopeo.tar'}:{name}"
    world.skopeo_copy(world.seed_ref, theirs)
    assert world.labcheck("inspect", theirs).stdout == world.skopeo_inspect(theirs)
    assert world.labcheck("inspect", "--raw", theirs).stdout == world.skopeo_inspect(theirs, "--raw")
    ours = f"{transport}:{tmp_path / 'labcheck.tar'}:{name}"
    world.copy(theirs, ours)
    assert world.skopeo_inspect(ours, "--raw") == world.skopeo_inspect(theirs, "--raw")
    assert world.skopeo_inspect(ours) == world.labcheck("inspect", ours).stdout
    world.skopeo_copy(ours, f"dir:{tmp_path / 'back'}")
    assert_is_the_seed(world, seed, f"dir:{tmp_path / 'back'}", expected_config(seed, "docker", transport))


INSPECT_MODES = [[], ["--raw"], ["--config"], ["--config", "--raw"], ["--no-tags"]]


@pytest.mark.parametrize("mode", INSPECT_MODES, ids=lambda mode: " ".join(mode) or "plain")
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_labcheck_inspect_equals_skopeo_inspect(world: World, sources: dict[str, str], transport: str,
                                                mode: list[str]) -> None:
    """The `labcheck inspect` command prints what `skopeo inspect` prints, on every transport."""
    ref = sources[transport]
    ours = world.labcheck("inspect", *mode, *world.flags(ref), ref).stdout
    assert ours == world.skopeo_inspect(ref, *mode)
    assert ours.strip()


@pytest.mark.parametrize("flags", [[], ["--override-arch", "arm64"]], ids=["amd64", "arm64"])
@pytest.mark.parametrize("mode", INSPECT_MODES, ids=lambda mode: " ".join(mode) or "plain")
def test_labcheck_inspect_of_the_lab_page_image_equals_skopeo(world: World, mode: list[str], flags: list[str]) -> None:
    """`skopeo inspect docker://registry.fedoraproject.org/fedora`, the lab page's first command: a list, anonymous."""
    ours = world.labcheck("inspect", *flags, *mode, world.seed_ref).stdout
    assert ours == world.skopeo(*flags, "inspect", *mode, world.seed_ref).stdout


# --- 5. the native engine and the skopeo driver agree --------------------------------------------------

LOCAL = ("oci", "docker-archive", "oci-archive", "docker-daemon", "containers-storage")


class _Host:
    """The real local testinfra host."""

    def __init__(self) -> None:
        self.host = testinfra.get_host("local://")
        self.backend = self.host.backend

    def run(self, command: str, *args: str) -> Any:
        return self.host.run(command, *args)


@pytest.fixture(scope="module")
def drivers(world: World) -> dict[str, Any]:
    return {"native": NativeDriver(), "skopeo": SkopeoDriver(_Host(), env=world.lab.env())}


def _inspections(world: World, drivers: dict[str, Any], ref: str) -> dict[str, dict[str, Any]]:
    out = {}
    for name, driver in drivers.items():
        with scoped_environ(world.lab.env()):
            out[name] = driver.inspect(ref).to_json()
    return out


@pytest.mark.parametrize("transport", LOCAL)
def test_drivers_agree_copying_into(world: World, seed: Seed, drivers: dict[str, Any], transport: str) -> None:
    results, targets = {}, {}
    for name, driver in drivers.items():
        targets[name] = world.ref(transport, f"driver-{name}-into-{transport}")
        with scoped_environ(world.lab.env()):
            results[name] = driver.copy(world.seed_ref, targets[name])
    assert results["native"].manifest_digest == results["skopeo"].manifest_digest
    assert sha256_digest(results["native"].manifest) == results["native"].manifest_digest
    if transport in ("docker-daemon", "docker-archive"):
        # skopeo cannot give back the manifest it wrote there (reading the archive makes one up): only the digest
        assert results["skopeo"].manifest == b""
    else:
        assert results["native"].manifest == results["skopeo"].manifest
        assert results["native"].media_type == results["skopeo"].media_type
    seen = {name: _inspections(world, drivers, ref) for name, ref in targets.items()}
    for who_wrote, views in seen.items():
        assert views["native"] == views["skopeo"], who_wrote
    for views in seen.values():
        views["native"].pop("Name", None)
    assert seen["native"]["native"] == seen["skopeo"]["native"]
    assert seen["native"]["native"]["Labels"]["version"] == "38"
    for ref in targets.values():
        assert_is_the_seed(world, seed, ref, expected_config(seed, "docker", transport))


@pytest.mark.parametrize("transport", LOCAL)
def test_drivers_agree_copying_from(world: World, drivers: dict[str, Any], sources: dict[str, str],
                                    transport: str, tmp_path: Path) -> None:
    results = {}
    for name, driver in drivers.items():
        with scoped_environ(world.lab.env()):
            results[name] = driver.copy(sources[transport], f"dir:{tmp_path / name}")
    assert results["native"].manifest_digest == results["skopeo"].manifest_digest
    assert results["native"].manifest == results["skopeo"].manifest
    assert _tree(tmp_path / "native") == _tree(tmp_path / "skopeo")
    views = _inspections(world, drivers, sources[transport])
    assert views["native"] == views["skopeo"]
    assert views["native"]["Architecture"] == "amd64"


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}

