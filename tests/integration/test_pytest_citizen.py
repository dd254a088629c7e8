"""labcheck's pytest plugin in other people's pytest sessions: it claims only scenario files, its
options never collide (pytest-parallel's --workers), importing it loads nothing heavy and changes no
global state, and the `labcheck` command needs no plugin autoload. Local only: no lab world."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from labcheck.runner.plugin import XDIST_REFUSED

# Each test runs labcheck or pytest as a process of its own.
pytestmark = pytest.mark.command

SCENARIO = textwrap.dedent("""\
    {marker}id: {id}
    title: A scenario of the test
    steps:
      - id: hostname
        title: The host has a hostname file
        verify:
          - file: {{path: /etc/hostname}}
    """)


def scenario(path: Path, *, id: str = "demo", marked: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCENARIO.format(marker="labcheck: 1\n" if marked else "", id=id))
    return path


def pytest_in(project: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv], cwd=project,
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.fixture
def unrelated_project(tmp_path: Path) -> Path:
    """A project of someone else's, with YAML test data under tests/scenarios/."""
    (tmp_path / "tests" / "scenarios").mkdir(parents=True)
    (tmp_path / "tests" / "scenarios" / "login.yaml").write_text("user: alice\npassword: not-a-scenario\n")
    (tmp_path / "tests" / "test_login.py").write_text(textwrap.dedent("""\
        from pathlib import Path

        def test_login_data_is_read():
            assert "alice" in (Path(__file__).parent / "scenarios" / "login.yaml").read_text()
        """))
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    return tmp_path


def test_an_unrelated_project_runs_its_own_tests_untouched_next_to_pytest_parallel(unrelated_project: Path) -> None:
    result = pytest_in(unrelated_project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout and "scenario" not in result.stdout + result.stderr
    help_text = pytest_in(unrelated_project, "--help").stdout
    assert "--workers=WORKERS" in help_text  # pytest-parallel is loaded beside labcheck …
    assert "--labcheck-workers=N" in help_text  # … and labcheck's option carries its prefix


def test_scenarios_are_collected_only_by_a_rule_the_user_controls(tmp_path: Path) -> None:
    scenario(tmp_path / "named.labcheck.yaml", id="by-default-glob")
    scenario(tmp_path / "data" / "marked.yaml", id="by-marker", marked=True)
    scenario(tmp_path / "labs" / "lab1.yaml", id="by-ini-glob")
    plain = scenario(tmp_path / "scenarios" / "plain.yaml", id="plain")
    (tmp_path / "pytest.ini").write_text("[pytest]\nlabcheck_scenarios =\n    *.labcheck.yaml\n    labs/*.yaml\n")
    collected = pytest_in(tmp_path, "--collect-only", "-q")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "by-default-glob::hostname[local]" in collected.stdout
    assert "by-marker::hostname[local]" in collected.stdout
    assert "by-ini-glob::hostname[local]" in collected.stdout
    assert "plain" not in collected.stdout
    named = pytest_in(tmp_path, "--collect-only", "-q", str(plain.relative_to(tmp_path)))
    assert "plain::hostname[local]" in named.stdout, named.stdout + named.stderr


LIGHT_CHECK = textwrap.dedent("""\
    import logging, sys, warnings
    filters = list(warnings.filters)
    import labcheck.runner.plugin
    heavy = sorted(m for m in ("requests", "urllib3", "paramiko", "testinfra", "jinja2", "yaml", "jsonschema",
                               "labcheck.engine", "labcheck.runner.session", "labcheck.report.pytest_reports")
                   if m in sys.modules)
    print("heavy:", heavy)
    print("factory:", logging.getLogRecordFactory() is logging.LogRecord)
    print("filters:", warnings.filters == filters)
    """)


def test_importing_the_plugin_loads_nothing_heavy_and_changes_no_global_state() -> None:
    result = subprocess.run([sys.executable, "-c", LIGHT_CHECK], capture_output=True, text=True, timeout=60)
    assert result.stdout.split("\n")[:3] == ["heavy: []", "factory: True", "filters: True"], result.stdout + result.stderr


def test_a_session_without_scenarios_never_starts_labcheck(unrelated_project: Path) -> None:
    (unrelated_project / "tests" / "test_global_state.py").write_text(textwrap.dedent("""\
        import logging, sys, warnings

        def test_labcheck_is_dormant():
            assert "labcheck.runner.plugin" in sys.modules  # loaded through pytest11 …
            for name in ("labcheck.runner.session", "labcheck.report.pytest_reports", "labcheck.engine"):
                assert name not in sys.modules, name  # … but never started
            assert logging.getLogRecordFactory() is logging.LogRecord
            assert not any("InsecureRequestWarning" in str(f) for f in warnings.filters)
        """))
    result = pytest_in(unrelated_project)
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout + result.stderr


def test_the_command_works_without_plugin_autoload(tmp_path: Path) -> None:
    path = scenario(tmp_path / "demo.yaml")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_ADDOPTS": "-n 4"}
    for mode in ("verify", "check", "run"):
        result = subprocess.run([sys.executable, "-m", "labcheck.cli", mode, str(path), "--json",
                                 str(tmp_path / f"{mode}.json")], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert (tmp_path / f"{mode}.json").is_file()
    # Plain pytest without autoload: the plugin by its entry-point name.
    plain = pytest_in(tmp_path, "-p", "labcheck", str(path), "-q", env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert plain.returncode == 0 and "1 passed" in plain.stdout, plain.stdout + plain.stderr


def test_xdist_is_refused_with_one_line_for_scenarios_only(tmp_path: Path, unrelated_project: Path) -> None:
    path = scenario(tmp_path / "demo.yaml")
    refused = pytest_in(tmp_path, str(path), "-n", "2")
    assert refused.returncode == pytest.ExitCode.USAGE_ERROR, refused.stdout + refused.stderr
    assert refused.stderr.strip().splitlines() == [f"ERROR: {XDIST_REFUSED}"]
    assert pytest_in(tmp_path, str(path), "-n", "0").returncode == 0  # -n 0: no distribution
    others = pytest_in(unrelated_project, "-n", "2")  # a project without scenarios keeps xdist
    assert others.returncode == 0 and "1 passed" in others.stdout, others.stdout + others.stderr


@pytest.mark.parametrize(("option", "says"), [(["--sudo"], "--sudo: labcheck checks a host as its own user"),
                                              (["--connection", "docker"], "--connection docker: labcheck reaches")])
def test_testinfra_options_labcheck_does_not_carry_out_are_refused(tmp_path: Path, option: list[str], says: str) -> None:
    path = scenario(tmp_path / "demo.yaml")
    result = pytest_in(tmp_path, str(path), *option)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"ERROR: labcheck: {says}"), result.stderr
    assert pytest_in(tmp_path, str(path), "--connection", "ssh").returncode == 0  # ssh:// is labcheck's own


@pytest.mark.parametrize(("term", "escapes"), [("dumb", False), ("xterm", True)])
def test_the_live_table_moves_the_cursor_only_where_pytest_marks_up(tmp_path: Path, term: str, escapes: bool) -> None:
    import pty

    path = scenario(tmp_path / "demo.yaml")
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PY_COLORS", "FORCE_COLOR")}
    process = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(path), "--hosts",
                                "local://a,local://b"], cwd=tmp_path, stdin=terminal, stdout=terminal,
                               stderr=terminal, env={**env, "TERM": term}, close_fds=True)
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: pytest is done
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0, output.decode(errors="replace")
    assert (b"hosts done" in output) is escapes  # the live table is drawn only with cursor control …
    assert (b"\x1b[" in output) is escapes  # … and nothing else escapes on a dumb terminal
