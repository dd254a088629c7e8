"""The run's exit code from its results: the order in which problems outrank each other."""

from __future__ import annotations

import pytest

from labcheck.results import ERROR, FAILED, PASSED, UNREACHABLE, RunResults, StepResult


def results(*statuses: tuple[str, str], host_errors: dict[str, str] | None = None,
            usage_errors: list[str] | None = None) -> RunResults:
    run = RunResults(host_errors=dict(host_errors or {}), usage_errors=list(usage_errors or []))
    for index, (host, status) in enumerate(statuses):
        run.add(StepResult(step_id=f"s{index}", title="", host=host, status=status))
    return run


@pytest.mark.parametrize(("statuses", "host_errors", "expected"), [
    ([("a", PASSED), ("b", PASSED)], {}, 0),
    ([("a", PASSED), ("b", FAILED)], {}, 1),
    ([("a", PASSED), ("b", UNREACHABLE)], {"b": "connection refused"}, 3),
    # A mixed class: some students unfinished, one VM down. The run is incomplete: 3.
    ([("a", FAILED), ("b", PASSED), ("c", UNREACHABLE)], {"c": "connection refused"}, 3),
    ([("a", FAILED), ("c", UNREACHABLE)], {}, 3),
    ([("a", ERROR), ("b", FAILED), ("c", UNREACHABLE)], {"c": "timeout"}, 4),
])
def test_exit_code_ranking(statuses, host_errors, expected) -> None:
    assert results(*statuses, host_errors=host_errors).exit_code() == expected


def test_a_usage_error_outranks_everything() -> None:
    assert results(("a", ERROR), ("b", UNREACHABLE), usage_errors=["bad --var"]).exit_code() == 2
