"""The Skopeo lab scenario end to end on the real lab world: run, verify, reset, check, partial states."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.labenv.world import LabWorld

pytestmark = pytest.mark.lab

SCENARIO = Path(__file__).parent.parent.parent / "scenarios" / "skopeo-moving-sharing.yaml"
STEPS = ["remote-inspect", "metadata-container", "pull-to-storage", "pull-to-dir", "podman-to-docker",
         "registry-to-registry"]


class Lab:
    """The lab world plus a private home for the dir: step; runs labcheck and the real tools."""

    def __init__(self, world: LabWorld, home: Path) -> None:
        self.world = world
        self.dir_path = home / "fedora-skopeo"
        self.env = {**os.environ, **world.env()}
        self.outputs: list[str] = []

    def labcheck(self, mode: str, *extra: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "labcheck.cli", mode, str(SCENARIO), "--var", f"dir_path={self.dir_path}", *extra]
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=300)
        self.outputs.append(result.stdout + result.stderr)
        return result

    def tool(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=120)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def source(self) -> str:
        return f"{self.world.source_registry}/fedora"

    def password(self) -> str:
        return self.world.dest_credentials().password


@pytest.fixture
def lab(lab_world: LabWorld, tmp_path: Path) -> Lab:
    lab = Lab(lab_world, tmp_path)
    assert lab.labcheck("reset").returncode in (0, 1)
    return lab


def step_marks(check_output: str) -> dict[str, str]:
    """The ✔/✘ of each step title in `labcheck check` output."""
    marks = {}
    for line in check_output.splitlines():
        line = line.strip()
        if line[:1] in ("✔", "✘", "–"):
            marks[line[2:]] = line[0]
    return marks


def test_run_verify_reset_run(lab: Lab, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    first = lab.labcheck("run", "--html", str(html))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "6/6 steps passed" in first.stdout
    assert html.exists() and "registry-to-registry" in html.read_text()

    verify = lab.labcheck("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr

    reset = lab.labcheck("reset")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    after_reset = lab.labcheck("check")
    assert after_reset.returncode == 1
    marks = step_marks(after_reset.stdout)
    # A remote inspect leaves no trace on the host: with no later step done, it is not done yet.
    assert set(marks.values()) == {"✘"} and len(marks) == 6, after_reset.stdout
    assert "0/6 steps done" in after_reset.stdout
    assert "not done yet: it leaves nothing on the host to check" in after_reset.stdout

    again = lab.labcheck("run")
    assert again.returncode == 0, again.stdout + again.stderr

    everything = "\n".join(lab.outputs) + html.read_text()
    assert lab.password() not in everything


def test_only_the_dir_pull_done(lab: Lab) -> None:
    lab.tool("skopeo", "copy", f"docker://{lab.source()}", f"dir:{lab.dir_path}")
    result = lab.labcheck("check")
    assert result.returncode == 1
    marks = step_marks(result.stdout)
    assert marks["Pull an image into a directory"] == "✔"
    assert marks["Inspect an image remotely"] == "✔"  # the registry answers, and a later step is done
    assert marks["Run a container and inspect its metadata"] == "✘"
    assert "hint: podman run --name meta-data-container -id" in result.stdout
    assert "2/6 steps done" in result.stdout


def test_a_flipped_byte_in_the_layer_is_named(lab: Lab) -> None:
    lab.tool("skopeo", "copy", f"docker://{lab.source()}", f"dir:{lab.dir_path}")
    manifest = json.loads((lab.dir_path / "manifest.json").read_text())
    layer = lab.dir_path / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))
    result = lab.labcheck("verify", "-k", "pull-to-dir")
    assert result.returncode == 1
    assert manifest["layers"][0]["digest"].split(":")[1][:12] in result.stdout


def test_image_in_storage_but_not_in_docker(lab: Lab) -> None:
    lab.tool("podman", "run", "--name", "meta-data-container", "-id", lab.source(), "bash")
    result = lab.labcheck("check")
    marks = step_marks(result.stdout)
    assert marks["Run a container and inspect its metadata"] == "✔"
    assert marks["Move the image from Podman to Docker"] == "✘"
    assert result.returncode == 1


def test_destination_holding_a_different_image(lab: Lab) -> None:
    creds = lab.world.creds_file.read_text().strip()
    auth = lab.dir_path.parent / "auth.json"
    import base64
    auth.write_text(json.dumps({"auths": {lab.world.dest_registry: {"auth": base64.b64encode(creds.encode()).decode()}}}))
    lab.tool("skopeo", "copy", "--dest-authfile", str(auth), f"docker://{lab.source()}:39",
             f"docker://{lab.world.dest_registry}/{getpass.getuser()}/fedora:latest")
    result = lab.labcheck("verify", "-k", "registry-to-registry")
    assert result.returncode == 1
    assert lab.password() not in result.stdout + result.stderr
    assert "holds another image" in result.stdout or "digest" in result.stdout.lower(), result.stdout


def test_a_scenario_error_is_exit_2(lab: Lab, tmp_path: Path) -> None:
    result = lab.labcheck("verify", "--profile", "nope")
    assert result.returncode == 2
    assert "unknown profile 'nope'" in result.stderr


def test_plain_pytest_collects_steps_as_items_with_junit_names(lab: Lab, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "pytest", str(SCENARIO), "--hosts=local://", "--labcheck-mode=verify",
            f"--labcheck-var=dir_path={lab.dir_path}", "-k", "remote-inspect or pull-to-dir",
            f"--junitxml={junit}", "-p", "no:cacheprovider", "-q"]
    result = subprocess.run(argv, env=lab.env, capture_output=True, text=True, timeout=300)
    # Nothing pulled yet: pull-to-dir fails, and so the remote inspect (which leaves no trace) is not done yet.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed, 4 deselected" in result.stdout
    assert "not done yet: it leaves nothing on the host to check" in result.stdout
    xml = junit.read_text()
    assert 'name="remote-inspect[local]"' in xml and 'name="pull-to-dir[local]"' in xml
    assert "skopeo-moving-sharing" in xml


def test_run_with_the_real_skopeo_leaks_no_secret(lab: Lab, tmp_path: Path) -> None:
    html = tmp_path / "skopeo-driver.html"
    junit = tmp_path / "skopeo-driver.xml"
    result = lab.labcheck("run", "--driver", "skopeo", "--html", str(html), "--junitxml", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6/6 steps passed" in result.stdout
    password = lab.password()
    creds = lab.world.creds_file.read_text().strip()
    import base64
    forms = {password, base64.b64encode(creds.encode()).decode()}
    written = [html, junit, *lab.world.run_dir.glob("*.log")]
    for path in written:
        text = path.read_text(errors="replace")
        assert not any(form in text for form in forms), f"a secret leaked into {path}"
    assert not any(form in output for form in forms for output in lab.outputs)
