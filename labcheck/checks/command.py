"""`command`: run a shell command on the host and check its exit status, output and JSON fields."""

from __future__ import annotations

import json as jsonlib
import re
from typing import Any

from labcheck.checks.base import CheckContext, CheckResult, check
from labcheck.checks.expectations import matches, show
from labcheck.checks.jsonpath import PathError, lookup
from labcheck.checks.schema import TEXT_OR_LIST, as_list, params
from labcheck.checks.trace import Trace, last_line
from labcheck.errors import ScenarioValueError

SCHEMA = params(
    {
        "run": {"type": "string", "minLength": 1, "description": "the shell command, run as the host's user"},
        "exit_status": {"type": "integer", "minimum": 0, "maximum": 255, "default": 0},
        "stdout_contains": TEXT_OR_LIST,
        "stderr_contains": TEXT_OR_LIST,
        "stdout_matches": {"type": "string", "format": "regex", "description": "a Python regex searched in stdout"},
        "json": {
            "type": "object",
            "minProperties": 1,
            "description": "dotted path in stdout's JSON -> expected value, e.g. Labels.vendor: Fedora Project",
        },
    },
    "run",
)


@check("command", SCHEMA)
def command(
    ctx: CheckContext,
    run: str,
    exit_status: int = 0,
    stdout_contains: str | list[str] | None = None,
    stderr_contains: str | list[str] | None = None,
    stdout_matches: str | None = None,
    json: dict[str, Any] | None = None,  # noqa: A002 - the parameter's name in scenarios
) -> CheckResult:
    """Run a shell command on the host; check its exit status, what it prints and fields of its JSON output."""
    pattern = _regex(stdout_matches) if stdout_matches is not None else None
    trace = Trace(ctx, "command", f"`{run}` succeeds with the expected output")
    result = trace.run(run)
    if result.rc != exit_status:
        said = last_line(result.stderr) or last_line(result.stdout)
        return trace.failed(
            f"`{run}` exited with status {result.rc}, not {exit_status}" + (f": {said}" if said else ""),
            expected=f"exit status {exit_status}", actual=f"exit status {result.rc}",
        )
    for stream, wanted in (("stdout", stdout_contains), ("stderr", stderr_contains)):
        text = getattr(result, stream)
        for piece in as_list(wanted):
            if piece not in text:
                return trace.failed(f"`{run}` did not print {piece!r} on {stream}",
                                    expected=f"{stream} contains {piece!r}", actual=_short(text))
    if pattern is not None and pattern.search(result.stdout) is None:
        return trace.failed(f"the output of `{run}` does not match /{stdout_matches}/",
                            expected=f"stdout matches /{stdout_matches}/", actual=_short(result.stdout))
    if json:
        return _check_json(trace, run, result.stdout, json)
    return trace.passed(expected=f"exit status {exit_status}", actual=f"exit status {result.rc}")


def _regex(pattern: str) -> re.Pattern[str]:
    """stdout_matches compiled; the linter checks it unless it is a template, so it is checked again rendered."""
    try:
        return re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise ScenarioValueError(f"stdout_matches {pattern!r} is not a valid regular expression: {exc}") from None


def _check_json(trace: Trace, run: str, stdout: str, wanted: dict[str, Any]) -> CheckResult:
    try:
        document = jsonlib.loads(stdout)
    except ValueError as exc:
        return trace.failed(f"the output of `{run}` is not JSON ({exc})", expected="JSON on stdout",
                            actual=_short(stdout))
    for path, value in wanted.items():
        try:
            actual = lookup(document, path)
        except PathError as exc:
            return trace.failed(f"the JSON `{run}` printed has no {path}: {exc}",
                                expected=f"{path}: {show(value)}", actual="(absent)")
        if not matches(value, actual):
            return trace.failed(f"{path} is {show(actual)} in the output of `{run}`, not {show(value)}",
                                expected=f"{path}: {show(value)}", actual=f"{path}: {show(actual)}")
    fields = ", ".join(f"{path}: {show(value)}" for path, value in wanted.items())
    return trace.passed(expected=fields, actual=fields)


def _short(text: str, limit: int = 200) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "…"
