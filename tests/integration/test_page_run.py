"""`labcheck page run` on the course page and on edited copies of it, in the lab world's sandbox."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.labenv.sandbox import PAGE_DEST_PASSWORD, PAGE_DEST_USER
from labcheck.redact import leak_patterns

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "course" / "05-skopeo-moving-sharing.md"
SCENARIO = ROOT / "scenarios" / "skopeo-moving-sharing.yaml"
PAGE_CREDS = f"{PAGE_DEST_USER}:{PAGE_DEST_PASSWORD}"


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page writes ~/fedora-skopeo: a HOME of each test's own, so no other run on the machine sees it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


def labcheck(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labcheck.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd)


def course_copy(tmp_path: Path, edit=lambda text: text) -> Path:
    """The page (edited) and its scenario in a course layout of their own: course/ and scenarios/."""
    (tmp_path / "course").mkdir()
    (tmp_path / "scenarios").mkdir()
    shutil.copy(SCENARIO, tmp_path / "scenarios" / SCENARIO.name)
    page = tmp_path / "course" / PAGE.name
    page.write_text(edit(PAGE.read_text()))
    return page


def assert_no_leak(secret: str, *texts: str) -> None:
    """Not in any form: plain, escaped for HTML, JSON or the shell, URL- or base64-encoded."""
    for pattern in leak_patterns(secret):
        for text in texts:
            assert re.search(pattern, text) is None


def test_every_command_of_the_course_page_does_what_the_page_says(lab_world, tmp_path):
    reports = {kind: tmp_path / f"page.{kind}" for kind in ("json", "html", "xml")}
    result = labcheck("page", "run", str(PAGE), "--state-dir", str(lab_world.state_dir),
                      "--json", str(reports["json"]), "--html", str(reports["html"]), "--junitxml", str(reports["xml"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        f"page run {PAGE.name}: 9 passed, 0 failed, 4 replaced by the lab world (13 commands)")
    data = json.loads(reports["json"].read_text())
    assert data["mode"] == "page" and data["exit_code"] == 0
    steps = data["hosts"][0]["steps"]
    assert [s["status"] for s in steps].count("skipped") == 4
    replaced = [s for s in steps if s["status"] == "skipped"]
    assert all(s["reason"].startswith("replaced by the lab world: ") for s in replaced)
    inspect = next(s for s in steps if s["title"] == "skopeo inspect docker://registry.fedoraproject.org/fedora")
    assert {c["check"] for c in inspect["checks"]} == {"exit_status", "page_output"}
    assert 'classname="05-skopeo-moving-sharing.md" name="05-skopeo-moving-sharing.md:549"' in reports["xml"].read_text()
    # The page prints its robot account's password; no report, and no output, does.
    assert_no_leak(PAGE_DEST_PASSWORD, result.stdout, result.stderr, *(p.read_text() for p in reports.values()))
    assert "--dest-creds ***" in reports["json"].read_text()


def test_a_page_command_that_fails_is_named_with_its_line_and_stderr_credentials_redacted(lab_world, tmp_path):
    wrong = "WRONGTOKEN0123456789"
    page = course_copy(tmp_path, lambda text: text.replace(PAGE_DEST_PASSWORD, wrong))
    line = next(n for n, text in enumerate(page.read_text().splitlines(), 1) if text.startswith("skopeo copy") and "--dest-creds" in text)
    result = labcheck("page", "run", str(page), "--state-dir", str(lab_world.state_dir),
                      "--json", str(tmp_path / "page.json"))
    assert result.returncode == 1
    failed = [l for l in result.stdout.splitlines() if l.lstrip().startswith("✘")]
    assert len(failed) == 1 and f"{PAGE.name}:{line} " in failed[0]
    assert f"{page}:{line}: exit status 1: " in result.stdout
    assert "unauthorized" in result.stdout
    assert_no_leak(wrong, result.stdout, result.stderr, (tmp_path / "page.json").read_text())


@pytest.mark.parametrize(("text", "message"), [
    ("# A page\n\nNo commands here.\n", "no shell command"),
    ("# A page\n\n```sh\nskopeo inspect docker://registry.fedoraproject.org/fedora\n", "unterminated"),
])
def test_a_page_that_is_not_a_course_page_is_one_line_and_exit_2(lab_world, tmp_path, text, message):
    page = tmp_path / "page.md"
    page.write_text(text)
    result = labcheck("page", "run", str(page), "--state-dir", str(lab_world.state_dir))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(page) in lines[0] and message in lines[0]


def test_a_command_that_hangs_is_killed_at_the_timeout_named_with_its_line_and_exit_2(lab_world, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n```sh\necho before\nsleep 600\necho after\n```\n")
    result = labcheck("page", "run", str(page), "--state-dir", str(lab_world.state_dir), "--timeout", "1")
    assert result.returncode == 2
    assert f"{page}:5: `sleep 600` did not finish within 1 s (killed)" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "page run page.md: 2 passed, 1 failed, 0 replaced by the lab world (3 commands)"


def test_the_live_profile_passes_in_the_sandbox_and_a_reset_leaves_nothing_done(lab_world):
    env = {**os.environ, "QUAY_CREDS": PAGE_CREDS}
    state = ["lab", "--state-dir", str(lab_world.state_dir), "shell", "--", sys.executable, "-m", "labcheck.cli"]
    run = labcheck(*state, "run", str(SCENARIO), "--profile", "live", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6/6 steps passed" in run.stdout
    reset = labcheck(*state, "reset", str(SCENARIO), "--profile", "live", env=env)
    assert reset.returncode == 0, reset.stdout + reset.stderr
    check = labcheck(*state, "check", str(SCENARIO), "--profile", "live", env=env)
    assert check.returncode == 1
    lines = check.stdout.strip().splitlines()
    assert lines[-1] == "0/6 steps done"
    assert "  hint: skopeo inspect docker://registry.fedoraproject.org/fedora" in lines
    assert_no_leak(PAGE_DEST_PASSWORD, run.stdout, run.stderr, check.stdout, check.stderr)
