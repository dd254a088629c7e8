"""The profile fits the machine, a secret that is not set leaves only its steps unchecked, platform facts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.labenv.world import LabWorld

# Each test runs labcheck or pytest as a process of its own.
pytestmark = pytest.mark.command

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "skopeo-moving-sharing.yaml"


def _check(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LABCHECK_") and k != "QUAY_CREDS"}
    return subprocess.run([sys.executable, "-m", "labcheck.cli", "check", str(SCENARIO), *argv],
                          env={**clean, **env}, capture_output=True, text=True, timeout=300)


def test_without_a_lab_world_check_uses_live_and_says_so(tmp_path: Path) -> None:
    # Only the step that needs QUAY_CREDS: nothing is asked of the real registries.
    result = _check("-k", "registry-to-registry", "--json", str(tmp_path / "r.json"),
                    env={"LABCHECK_STATE_DIR": str(tmp_path / "no-lab")})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "  profile live: found no lab world (labcheck lab up starts one; --profile chooses)"
    assert "  – Copy an image between registries with credentials" in lines
    assert "  why: needs a secret: secret 'QUAY_CREDS' is not set" in lines
    assert "  hint: export QUAY_CREDS=… or put QUAY_CREDS=… in a --secrets-file" in lines
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["profile"] == "live"


@pytest.mark.lab
def test_with_a_lab_world_check_uses_offline_and_says_so(lab_world: LabWorld, tmp_path: Path) -> None:
    result = _check("-k", "remote-inspect", env={"LABCHECK_STATE_DIR": str(lab_world.state_dir)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1] == f"  profile offline: found the lab world in {lab_world.state_dir}"
    assert "  ✔ Inspect an image remotely" in result.stdout.splitlines()


@pytest.mark.lab
def test_live_without_the_secret_checks_the_other_steps(lab_world: LabWorld, tmp_path: Path) -> None:
    """The live profile's registry stood in for by the lab world's (--var source=…): step 1 is checked
    for real (and its Architecture comes from the host's facts), step 6 is marked as needing QUAY_CREDS."""
    env = {"LABCHECK_STATE_DIR": str(tmp_path / "no-lab"), "SSL_CERT_FILE": str(lab_world.ca_bundle)}
    result = _check("--profile", "live", "--var", f"source={lab_world.source_registry}", "-k",
                    "remote-inspect or registry-to-registry", "--json", str(tmp_path / "r.json"), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "profile" not in result.stdout.splitlines()[1]  # asked for: nothing to explain
    (host,) = json.loads((tmp_path / "r.json").read_text())["hosts"]
    inspect, copy = host["steps"]
    assert (inspect["id"], inspect["status"]) == ("remote-inspect", "passed")
    assert "Architecture: amd64" in inspect["checks"][0]["actual"]  # this machine is x86_64
    assert (copy["id"], copy["status"], copy["checks"]) == ("registry-to-registry", "skipped", [])
    assert copy["reason"] == "needs a secret: secret 'QUAY_CREDS' is not set"
