"""The CLI imports only the command it runs; its table of which module registers which command stays true."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from labcheck.cli import COMMAND_MODULES, COMMANDS, modules_for


def test_the_command_table_names_what_each_module_registers() -> None:
    registered = {}
    for module_name in COMMAND_MODULES:
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module_name).register(subparsers)
        registered.update(dict.fromkeys(subparsers.choices, module_name))
    assert registered == COMMANDS


@pytest.mark.parametrize(
    "argv, modules",
    [
        (["copy", "a", "b"], ["labcheck.commands.copy"]),
        (["--debug", "lint", "f.yaml"], ["labcheck.commands.scenario"]),
        (["--version"], []),
        ([], []),
        (["--help"], COMMAND_MODULES),
        (["cpy"], COMMAND_MODULES),
    ],
)
def test_modules_for_a_command_line(argv: list[str], modules: list[str]) -> None:
    assert modules_for(argv) == modules


@pytest.mark.command  # a fresh interpreter: what --version imports
def test_version_imports_no_command() -> None:
    code = "import sys; from labcheck.cli import main\ntry: main(['--version'])\nexcept SystemExit: pass\n" \
           "print(sorted(m for m in sys.modules if m.startswith(('labcheck.commands', 'labcheck.engine', 'requests'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
