"""A mistake in a run's options is one line naming it and exit 2: before pytest starts (labcheck's
commands) or as a collection error (plain pytest), never a traceback, an INTERNALERROR or every
step failing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each test runs labcheck or pytest as a process of its own.
pytestmark = pytest.mark.command

SCENARIO = Path(__file__).resolve().parent.parent.parent / "scenarios" / "skopeo-moving-sharing.yaml"

CASES = [
    (["--inventory", "{tmp}/missing.yaml"], "cannot read the inventory {tmp}/missing.yaml: No such file or directory"),
    (["--inventory", "{tmp}/nameless.yaml"], "nameless.yaml:1: a student needs a name and a host"),
    (["--inventory", "{tmp}/broken.yaml"], "broken.yaml:1: YAML syntax error"),
    (["--ansible-inventory", "{tmp}/missing.ini"], "cannot read the Ansible inventory"),
    (["--hosts", "bogus://x"], "unsupported host URI 'bogus://x'"),
    (["--hosts", "ssh://student@[::1"], "host URI 'ssh://student@[::1': Invalid IPv6 URL"),
    (["--hosts", "local://", "--limit", "nosuch"], "--limit nosuch: no such group or host"),
    (["--hosts", "ssh://student@127.0.0.1", "--ssh-config", "{tmp}/missing.cfg"],
     "cannot read --ssh-config {tmp}/missing.cfg"),
    (["--workers", "0"], "argument --workers: expected at least 1, got 0"),
    (["--workers", "many"], "argument --workers: expected a whole number, got 'many'"),
    (["--host-timeout", "-1"], "argument --host-timeout: expected a number of seconds greater than 0, got -1"),
    (["--check-timeout", "nan"], "argument --check-timeout: expected a number of seconds greater than 0"),
    (["--profile", "nosuch"], "unknown profile 'nosuch' in skopeo-moving-sharing.yaml (profiles: offline, live)"),
    (["--var", "novalue"], "--var 'novalue': expected NAME=VALUE"),
    (["--secrets-file", "{tmp}/missing.env"], "cannot read --secrets-file {tmp}/missing.env"),
]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "nameless.yaml").write_text("students: [{name: a}]\n")
    (tmp_path / "broken.yaml").write_text(": : :\n")
    return tmp_path


@pytest.mark.parametrize(("options", "message"), CASES, ids=[" ".join(o) for o, _ in CASES])
def test_labcheck_names_the_mistake_in_one_line(files: Path, options: list[str], message: str) -> None:
    argv = [sys.executable, "-m", "labcheck.cli", "verify", str(SCENARIO)]
    argv += [o.replace("{tmp}", str(files)) for o in options]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labcheck verify: "), result.stderr
    assert message.replace("{tmp}", str(files)) in lines[0], lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(("options", "message"), [
    CASES[7], (["--labcheck-workers", "0"], "argument --labcheck-workers: expected at least 1, got 0"),
], ids=["ssh-config", "workers"])
def test_plain_pytest_reports_it_as_a_usage_or_collection_error(files: Path, options: list[str], message: str) -> None:
    argv = [sys.executable, "-m", "pytest", str(SCENARIO), "-c", os.devnull, "--rootdir", str(SCENARIO.parent),
            "-p", "no:cacheprovider", "--labcheck-mode=verify", *[o.replace("{tmp}", str(files)) for o in options]]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR), output
    assert message.replace("{tmp}", str(files)) in output and "INTERNALERROR" not in output, output


@pytest.mark.parametrize(("mode", "options", "message"), [
    ("verify", ["--profile", "offline"], "no lab world is running and LABCHECK_SOURCE_REGISTRY is not set"),
    ("check", ["--profile", "offline"], "no lab world is running and LABCHECK_SOURCE_REGISTRY is not set"),
])
def test_what_every_host_would_lack_is_one_line_before_any_check(tmp_path: Path, mode: str, options: list[str],
                                                                  message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABCHECK_") and k != "QUAY_CREDS"}
    env["LABCHECK_STATE_DIR"] = str(tmp_path / "no-lab")  # no lab world there
    result = subprocess.run([sys.executable, "-m", "labcheck.cli", mode, str(SCENARIO), *options], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"labcheck {mode}: {message}"), result.stderr
    assert result.stdout == ""


RUNTIME_HOSTILE = """\
id: hostile-at-run
title: Values that are wrong only once rendered
vars:
  pattern: "(["
steps:
  - id: regex
    title: A regex from a variable
    verify:
      - command: {run: "true", stdout_matches: "{{ pattern }}"}
  - id: escape
    title: A computed attribute name
    verify:
      - command: {run: "echo {{ lab|attr('_' ~ '_class__') }}"}
  - id: fine
    title: An ordinary step
    verify:
      - command: {run: "true"}
"""


def test_a_scenario_value_wrong_once_rendered_is_exit_2_and_the_other_steps_still_run(tmp_path: Path) -> None:
    scenario = tmp_path / "hostile.yaml"
    scenario.write_text(RUNTIME_HOSTILE)
    result = subprocess.run([sys.executable, "-m", "labcheck.cli", "verify", str(scenario), "--hosts", "local://"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = result.stderr.strip().splitlines()
    assert errors == [
        "labcheck verify: step 'regex' check command: stdout_matches '([' is not a valid regular expression: "
        "unterminated character set at position 1",
        "labcheck verify: template error in step 'escape' check command.run: access to attribute '__class__' of "
        "'LabInfo' object is unsafe. (templates render in a sandbox: no attribute starting with '_')",
    ], result.stderr
    assert "verify hostile-at-run on local: 1/3 steps passed" in result.stdout
    assert "crashed" not in result.stdout + result.stderr
