"""What pytest prints itself, outside any report (an INTERNALERROR traceback), masks secrets too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each test runs labcheck or pytest as a process of its own.
pytestmark = pytest.mark.command

TOKEN = "Sup3r/Secret+Token"
SCENARIO = """\
id: leak
title: Leak
vars:
  token: "{{ secret('LC_IE_TOKEN') }}"
steps:
  - id: one
    title: One
    verify:
      - command: {run: "test -n '{{ token }}'"}
"""
# A plugin bug after the steps ran (so the secret is known): its message carries the secret.
CONFTEST = """\
import os
def pytest_runtest_logreport(report):
    raise RuntimeError("the token is " + os.environ["LC_IE_TOKEN"])
"""


@pytest.fixture
def leaky_scenario(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    path = tmp_path / "leak.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.mark.parametrize("how", ["labcheck", "pytest"])
def test_an_internal_error_traceback_is_redacted(leaky_scenario: Path, how: str) -> None:
    if how == "labcheck":
        argv = [sys.executable, "-m", "labcheck.cli", "verify", str(leaky_scenario)]
    else:
        argv = [sys.executable, "-m", "pytest", str(leaky_scenario), "-c", os.devnull, "--rootdir",
                str(leaky_scenario.parent), "-p", "no:cacheprovider", "--labcheck-mode=verify"]
    result = subprocess.run(argv, env={**os.environ, "LC_IE_TOKEN": TOKEN}, capture_output=True, text=True,
                            timeout=120, cwd=leaky_scenario.parent)
    output = result.stdout + result.stderr
    assert "INTERNALERROR>" in output and "RuntimeError: the token is ***" in output, output[-3000:]
    assert TOKEN not in output and "Sup3r" not in output
    assert result.returncode == (4 if how == "labcheck" else pytest.ExitCode.INTERNAL_ERROR)


def test_a_crash_of_the_cli_is_one_redacted_line(tmp_path: Path) -> None:
    """An unexpected exception in a command: one line naming it and --debug, exit 4, no traceback."""
    script = tmp_path / "crash.py"
    script.write_text(
        "import sys\n"
        "from labcheck import cli\n"
        "from labcheck.redact import REDACTOR\n"
        f"REDACTOR.add({TOKEN!r})\n"
        "def boom(args):\n"
        f"    raise ValueError('bad value ' + {TOKEN!r})\n"
        "parser = cli.build_parser\n"
        "def patched(*modules):\n"
        "    p = parser(*modules)\n"
        "    sub = p._subparsers._group_actions[0].choices['schema']\n"
        "    sub.set_defaults(func=boom)\n"
        "    return p\n"
        "cli.build_parser = patched\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    for debug in ([], ["--debug"]):
        result = subprocess.run([sys.executable, str(script), *debug, "schema"], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 4, result.stderr
        assert "labcheck schema: internal error: ValueError: bad value ***" in result.stderr, result.stderr
        assert TOKEN not in result.stdout + result.stderr
        assert ("Traceback" in result.stderr) == bool(debug), result.stderr
