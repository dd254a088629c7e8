"""pytest's run controls mean what they say for steps carried out ahead of pytest's loop: -x and
--maxfail stop the doing, --lf re-runs a failed step with the steps it requires, -k matching nothing
is one line, Ctrl-C is 130, -m selects steps by tag, mode and host group. Local hosts only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# Each test runs labcheck or pytest as a process of its own.
pytestmark = pytest.mark.command

FAIL_THEN_TOUCH = textwrap.dedent("""\
    id: fail-then-touch
    title: Step one fails, step two leaves a trace
    steps:
      - id: one
        title: Step one fails
        do: {{run: "false"}}
        verify:
          - file: {{path: "{dir}/one"}}
      - id: two
        title: Step two touches a file
        do: {{run: "touch {dir}/two-{{{{ host }}}}"}}
        verify:
          - file: {{path: "{dir}/two-{{{{ host }}}}"}}
    """)


def labcheck(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labcheck.cli", *argv], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


@pytest.mark.parametrize("limit", [["-x"], ["--maxfail", "1"]], ids=["-x", "--maxfail"])
@pytest.mark.parametrize("hosts", ["local://", "local://a,local://b,local://c"], ids=["one host", "three hosts"])
def test_no_later_step_is_done_once_the_limit_is_reached(tmp_path: Path, limit: list[str], hosts: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(FAIL_THEN_TOUCH.format(dir=tmp_path))
    result = labcheck("run", str(path), "--hosts", hosts, *limit, "--workers", "1", "--json", str(tmp_path / "r.json"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert not list(tmp_path.glob("two-*")), "step two was done after the run stopped"
    assert "stopping after 1 failures" in result.stdout


def test_without_a_limit_every_step_is_done(tmp_path: Path) -> None:
    """The control for the test above: the same run without -x does step two."""
    path = tmp_path / "s.yaml"
    path.write_text(FAIL_THEN_TOUCH.format(dir=tmp_path))
    result = labcheck("run", str(path))
    assert result.returncode == 1 and (tmp_path / "two-local").exists(), result.stdout + result.stderr


REQUIRES = textwrap.dedent("""\
    id: requires
    title: A step that builds on another
    steps:
      - id: base
        title: Lay the base
        do: {{run: "touch {dir}/base && echo x >> {dir}/base-runs"}}
        verify:
          - file: {{path: "{dir}/base"}}
      - id: top
        title: Build on it
        requires: [base]
        do: {{run: "test -f {dir}/allowed && test -f {dir}/base && touch {dir}/top"}}
        verify:
          - file: {{path: "{dir}/top"}}
    """)


def test_last_failed_reruns_a_step_with_the_steps_it_requires(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(REQUIRES.format(dir=tmp_path))
    argv = [sys.executable, "-m", "pytest", str(path), "--labcheck-mode=run", "-q", "-o", "cache_dir=" + str(tmp_path / ".cache")]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert first.returncode == 1 and "1 failed, 1 passed" in first.stdout, first.stdout + first.stderr
    (tmp_path / "base").unlink()  # the host lost the base meanwhile: --lf must lay it again
    (tmp_path / "allowed").touch()
    again = subprocess.run([*argv, "--lf"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert again.returncode == 0 and "1 passed, 1 deselected" in again.stdout, again.stdout + again.stderr
    assert (tmp_path / "top").exists()
    assert (tmp_path / "base-runs").read_text() == "x\nx\n"


@pytest.mark.parametrize("mode", ["verify", "check", "run"])
def test_k_matching_no_step_is_one_line_and_exit_2(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(FAIL_THEN_TOUCH.format(dir=tmp_path))
    result = labcheck(mode, str(path), "-k", "typo")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"labcheck {mode}: no step matches -k 'typo' (the steps: one, two)"]
    assert result.stdout.strip() == ""
    assert not list(tmp_path.glob("two-*"))


def test_ctrl_c_is_130(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""\
        id: slow
        title: A step that takes long
        steps:
          - id: wait
            title: Wait
            do: {{run: "touch {tmp_path}/started && sleep 60"}}
            verify:
              - file: {{path: "{tmp_path}/started"}}
        """))
    # Its own process group, signalled as a terminal's Ctrl-C signals the foreground group.
    process = subprocess.Popen([sys.executable, "-m", "labcheck.cli", "run", str(path)], start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, out + err
    assert err.splitlines()[-1] == "labcheck run: interrupted (SIGINT)"


MARKED = textwrap.dedent("""\
    id: marked
    title: Steps with tags
    steps:
      - id: one
        title: One
        tags: [fast]
        verify:
          - file: {path: /etc/hostname}
      - id: two
        title: Two
        tags: [slow, registry]
        verify:
          - file: {path: /etc/hostname}
    """)


def test_markers_select_steps_by_tag_mode_and_host_group(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(MARKED)
    (tmp_path / "class.yaml").write_text("students:\n  - {name: alice, host: local, groups: [monday]}\n"
                                         "  - {name: bob, host: local, groups: [tuesday]}\n")

    def selected(expression: str) -> list[str]:
        result = subprocess.run([sys.executable, "-m", "pytest", "s.yaml", "-p", "no:cacheprovider", "--strict-markers",
                                 "--labcheck-inventory", "class.yaml", "--collect-only", "-q", "-m", expression],
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert result.returncode in (0, 5), result.stdout + result.stderr
        return sorted(line.split("::")[-1] for line in result.stdout.splitlines() if line.startswith("s.yaml::"))

    assert selected("slow") == ["two[alice]", "two[bob]"]
    assert selected("group_monday and not registry") == ["one[alice]"]
    assert selected("labcheck and mode_verify") == ["one[alice]", "one[bob]", "two[alice]", "two[bob]"]
    assert selected("mode_run") == []
