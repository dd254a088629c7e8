"""`labcheck lint`: every problem of a broken scenario, as file:line:col, exit 2; valid files pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labcheck.scenario.lint import lint_file

CASES = Path(__file__).parent.parent / "lint_cases"
SCENARIOS = Path(__file__).parent.parent.parent / "scenarios"

EXPECTED = {
    "unknown_key.yaml": [
        (4, 5, "step 'first' is missing 'verify'"),
        (6, 5, "unknown key 'verfy' in step 'first'; did you mean 'verify'?"),
    ],
    "bad_types.yaml": [
        (6, 14, "step 'first' retries should be a whole number, not a string"),
        (7, 15, "step 'first' requires should be a list, not a string"),
    ],
    "unknown_check.yaml": [(8, 9, "unknown check 'dir_imag'; did you mean 'dir_image'?")],
    "requires.yaml": [
        (6, 15, "requirements form a cycle: a -> b -> a"),
        (11, 19, "step 'b' requires unknown step 'nowhere'"),
    ],
    "undefined_var.yaml": [
        (9, 12, "undefined variable 'sorce' in step 'a' do.run"),
        (12, 11, "undefined variable 'nothing_here' in step 'a' hint"),
    ],
    "syntax.yaml": [(6, 1, "YAML syntax error: expected ',' or ']', but got '<stream end>'")],
    "duplicate.yaml": [
        (8, 9, "step id 'a' is used twice (first in step 1)"),
        (10, 5, "duplicate key 'title'"),
    ],
    "hostile.yaml": [
        (4, 11, "template error in vars.escape: attribute '__class__' is not allowed "
                "(templates render in a sandbox: no attribute starting with '_')"),
        (9, 48, "step 'a' verify.0.command.stdout_matches '([' is not a valid regular expression: "
                "unterminated character set at position 1"),
        (10, 24, "template error in step 'a' verify.1.command.run: attribute '__init__' is not allowed "
                 "(templates render in a sandbox: no attribute starting with '_')"),
        (11, 11, "template error in step 'a' hint: attribute '__self__' is not allowed "
                 "(templates render in a sandbox: no attribute starting with '_')"),
    ],
    "bad_action.yaml": [
        (7, 13, "step 'a' do.copy is missing 'dst'"),
        (9, 7, "each action has exactly one name; found run, delete"),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_problem_is_reported_with_its_position(name: str) -> None:
    problems = lint_file(CASES / name)
    assert [(p.line, p.column, p.message) for p in problems] == EXPECTED[name]
    assert all(str(p).startswith(f"{CASES / name}:{p.line}:{p.column}: ") for p in problems)


@pytest.mark.parametrize("path", [CASES / "valid_minimal.yaml", SCENARIOS / "skopeo-moving-sharing.yaml"])
def test_valid_files_have_no_problems(path: Path) -> None:
    assert lint_file(path) == []


@pytest.mark.command
def test_cli_lint_exits_2_and_prints_every_problem() -> None:
    files = [str(CASES / name) for name in sorted(EXPECTED)]
    result = subprocess.run([sys.executable, "-m", "labcheck.cli", "lint", *files], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert len(lines) == sum(len(v) for v in EXPECTED.values())
    assert "Traceback" not in result.stderr


@pytest.mark.command
def test_cli_lint_of_valid_files_exits_0() -> None:
    result = subprocess.run([sys.executable, "-m", "labcheck.cli", "lint", str(CASES / "valid_minimal.yaml"),
                             str(SCENARIOS / "skopeo-moving-sharing.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_unknown_profile_key_and_default_profile(tmp_path: Path) -> None:
    scenario = tmp_path / "p.yaml"
    scenario.write_text(
        "id: p\ntitle: P\ndefault_profile: nope\nprofiles:\n  live:\n    varz: {a: 1}\n"
        "steps:\n  - id: a\n    title: A\n    verify:\n      - file: {path: /x}\n"
    )
    messages = [p.message for p in lint_file(scenario)]
    assert "default_profile 'nope' is not one of the profiles" in messages
    assert any(m.startswith("unknown key 'varz' in profiles.live; did you mean 'vars'?") for m in messages)


def _formats(schema: object) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["format"]} if isinstance(schema.get("format"), str) else set()
        return found.union(*(_formats(v) for v in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_formats(v) for v in schema))
    return set()


def test_every_format_in_the_schema_is_checked_and_named() -> None:
    """jsonschema ignores a format its checker does not know: each one the schema uses must be known."""
    import jsonschema

    from labcheck.scenario.lint import FORMAT_NAMES
    from labcheck.scenario.schema import scenario_schema

    used = _formats(scenario_schema())
    assert used, "the schema uses no format at all: this test checks nothing"
    assert used <= set(jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers)
    assert used <= set(FORMAT_NAMES)


def test_a_templated_regex_is_left_to_the_run(tmp_path: Path) -> None:
    scenario = tmp_path / "t.yaml"
    scenario.write_text("id: t\ntitle: T\nvars: {p: x}\nsteps:\n  - id: a\n    title: A\n    verify:\n"
                        "      - command: {run: 'true', stdout_matches: '{{ p }}(['}\n")
    assert lint_file(scenario) == []


@pytest.mark.command
def test_a_hostile_scenario_is_exit_2_with_file_and_line_before_anything_runs() -> None:
    path = CASES / "hostile.yaml"
    result = subprocess.run([sys.executable, "-m", "labcheck.cli", "verify", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"labcheck verify: {path}:4:11: template error in vars.escape")
    assert f"{path}:9:48: step 'a' verify.0.command.stdout_matches '([' is not a valid regular expression" \
        in result.stderr
    assert "Traceback" not in result.stderr and "crashed" not in result.stderr
