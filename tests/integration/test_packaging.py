"""labcheck as a wheel: built from the sources, installed into a fresh venv outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import labcheck

# Each test runs labcheck or pytest as a process of its own.
pytestmark = pytest.mark.command

REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, argv))}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ directory of a fresh venv holding only the wheel built from a copy of the sources
    (plus a course page, which the wheel must pick up); its dependencies come from this venv."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    tracked = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO).stdout.split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    (source / "course").mkdir(exist_ok=True)
    (source / "course" / "99-packaging-test.md").write_text("# A course page\n")
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)])
    wheel = next(dist.glob("labcheck-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)])
    # The dependencies (pytest, paramiko, …) from this venv's site-packages, whose labcheck (editable,
    # through a .pth file that a path added this way does not run) stays out of reach.
    purelib = Path(_run([str(venv / "bin" / "python"), "-c",
                         "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (purelib / "deps-of-the-test.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _outside(bin_dir: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """labcheck from the fresh venv, run in an empty directory far from the repository."""
    workdir = bin_dir.parent.parent / "elsewhere"
    workdir.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LABCHECK_", "PYTHON"))}
    return subprocess.run([str(bin_dir / "labcheck"), *argv], cwd=workdir, capture_output=True, text=True,
                          timeout=300, env={**clean, **(env or {})})


def test_the_wheel_ships_the_scenarios_and_the_course(installed: Path) -> None:
    result = _outside(installed, "scenarios")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("skopeo-moving-sharing "))
    assert "Skopeo - Moving & Sharing" in line
    shipped = Path(line.rsplit("(", 1)[1].rstrip(")"))
    assert shipped.is_file() and shipped.parent.parent.name == "shipped", line
    assert str(installed.parent) in str(shipped), "the scenario must come from the installed wheel"
    assert shipped.read_text() == (REPO / "scenarios" / "skopeo-moving-sharing.yaml").read_text()
    pages = _run([str(installed / "python"), "-c",
                  "from labcheck.scenario.catalog import course_pages; print(*course_pages(), sep='\\n')"],
                 cwd=installed.parent).stdout.split()
    assert [Path(p).name for p in pages] == ["05-skopeo-moving-sharing.md", "99-packaging-test.md"]


def test_the_version_has_one_source(installed: Path) -> None:
    result = _outside(installed, "--version")
    assert result.stdout.strip() == f"labcheck {labcheck.__version__}"
    metadata = _run([str(installed / "python"), "-c", "import importlib.metadata as m; print(m.version('labcheck'))"])
    assert metadata.stdout.strip() == labcheck.__version__
    assert "version =" not in (REPO / "pyproject.toml").read_text().split("[project]", 1)[1].split("\n[", 1)[0]


def test_a_scenario_id_that_is_not_shipped_is_one_line(installed: Path) -> None:
    result = _outside(installed, "check", "no-such-lab")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "labcheck check: no scenario file or shipped scenario 'no-such-lab' (shipped: skopeo-moving-sharing)"]


def test_installed_without_a_lab_world_it_picks_live_and_says_so(installed: Path, tmp_path: Path) -> None:
    # Only the step that needs QUAY_CREDS, which is not set: nothing is asked of the real registries.
    result = _outside(installed, "check", "skopeo-moving-sharing", "-k", "registry-to-registry",
                      env={"LABCHECK_STATE_DIR": str(tmp_path / "no-lab-world"), "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "profile live: found no lab world" in result.stdout.splitlines()[1]
    assert "needs a secret: secret 'QUAY_CREDS' is not set" in result.stdout
