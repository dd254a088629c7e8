"""The Podman-to-Docker step where Docker is not Docker: `docker` is podman (podman-docker), or no daemon answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.labenv.world import LabWorld

pytestmark = pytest.mark.lab

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "skopeo-moving-sharing.yaml"
STEP = "podman-to-docker"


def _labcheck(mode: str, world: LabWorld, tmp_path: Path, *argv: str, env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-m", "labcheck.cli", mode, str(SCENARIO), "-k", STEP,
                             "--json", str(tmp_path / "r.json"), *argv],
                            env={**os.environ, **world.env(), **env}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "crashed" not in result.stdout + result.stderr
    (host,) = json.loads((tmp_path / "r.json").read_text())["hosts"]
    (step,) = host["steps"]
    assert step["id"] == STEP and step["status"] == "failed", step
    return step


def test_docker_that_is_podman_is_said_so_never_a_pass(lab_world: LabWorld, tmp_path: Path, in_world) -> None:
    """podman-docker's `docker` answers from podman's own store: with the image in podman's storage
    under the Docker name, a comparison would pass trivially. It fails, and says why."""
    source = lab_world.source_registry
    in_world(["podman", "pull", "-q", f"{source}/fedora"])
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "docker").write_text("#!/bin/sh\nexec podman \"$@\"\n")
    (shim / "docker").chmod(0o755)
    try:
        step = _labcheck("check", lab_world, tmp_path, env={"PATH": f"{shim}:{os.environ['PATH']}"})
    finally:
        in_world(["podman", "rmi", "-i", f"{source}/fedora"], check=False)
    assert step["reason"].startswith("`docker` on this host is podman (podman-docker's emulation), not a Docker engine"), step
    assert [c["check"] for c in step["checks"] if not c["passed"]][0] == "docker_image"


def test_no_docker_daemon_is_one_sentence(lab_world: LabWorld, tmp_path: Path) -> None:
    nowhere = tmp_path / "no-daemon.sock"
    # The live profile (with the lab world's registry) exports no DOCKER_HOST of its own: the one given here counts.
    common = ["--profile", "live", "--var", f"source={lab_world.source_registry}"]
    env = {"DOCKER_HOST": f"unix://{nowhere}", "QUAY_CREDS": "unused:unused"}
    step = _labcheck("verify", lab_world, tmp_path, *common, env=env)
    assert step["reason"] == (f"no Docker daemon answers at unix://{nowhere}: start Docker (systemctl start docker) "
                              "or point DOCKER_HOST at a running one"), step
