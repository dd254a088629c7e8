"""Shell conventions of the command and the live table: global options after the subcommand, lab's
--state-dir after its action, testinfra's --ssh-identity-file honoured, the table within the terminal."""

from __future__ import annotations

import argparse
import re

import pytest

from labcheck.cli import build_parser
from labcheck.results import RunResults, StepResult
from labcheck.runner.classrun import targets
from labcheck.runner.classview import LiveView, fit


@pytest.mark.parametrize("argv", [["lab", "env", "--state-dir", "D"], ["lab", "--state-dir", "D", "env"],
                                  ["lab", "up", "--state-dir", "D"]])
def test_lab_takes_its_state_dir_before_or_after_the_action(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).state_dir == "D"


@pytest.mark.parametrize(("argv", "debug"), [(["lint", "f", "--debug"], True), (["--debug", "lint", "f"], True),
                                              (["lab", "status", "--debug"], True), (["lint", "f"], False),
                                              (["verify", "s.yaml", "--debug"], True)])
def test_debug_is_accepted_before_or_after_the_subcommand(argv: list[str], debug: bool) -> None:
    assert build_parser().parse_args(argv).debug is debug


def test_testinfra_ssh_identity_file_is_the_default_key_of_ssh_hosts(tmp_path) -> None:
    class Config:
        stash = pytest.Stash()
        option = argparse.Namespace(hosts="ssh://a@127.0.0.9,ssh://b@127.0.0.9?ssh_identity_file=/own,local://",
                                    ssh_identity_file="/class-key", ssh_config=str(tmp_path / "none"),
                                    labcheck_known_hosts=str(tmp_path / "known_hosts"))

    (tmp_path / "none").write_text("")
    found = {t.name: t.identity_file for t in targets(Config())}  # type: ignore[arg-type]
    assert found == {"a@127.0.0.9": "/class-key", "b@127.0.0.9": "/own", "local": None}


def test_the_live_table_fits_the_terminal() -> None:
    results = RunResults(mode="verify", steps=[(f"step-{i}", f"Step {i}") for i in range(30)])
    hosts = ["a-student-with-a-long-name", "bob"]
    results.add(StepResult("step-0", "Step 0", "bob", "unreachable", reason="host unreachable: " + "why " * 60))
    written: list[str] = []
    view = LiveView(results, hosts, written.append, tty=True, width=lambda: 40)
    view.start()
    view.host_done("bob")
    lines = [line for text in written for line in re.sub(r"\x1b\[\d*[A-Za-z]", "", text).split("\n")]
    assert max(len(line) for line in lines) <= 39
    assert any(line.endswith("…") for line in lines)
    assert fit("short", 40) == "short"
