"""Scenario files as pytest collectors: one item per step × host, reporting the result its run stored."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import pytest

from labcheck.errors import LabcheckError
from labcheck.report import pytest_reports
from labcheck.report.pytest_reports import RESULTS_KEY
from labcheck.report.redact import REDACTOR
from labcheck.results import SKIPPED, UNREACHABLE, RunResults, StepResult
from labcheck.runner.classrun import HostTarget, HostWork, run_all, run_inputs
from labcheck.runner.classrun import targets as class_targets
from labcheck.scenario.model import Scenario, ScenarioError, Step, load_scenario


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Collector]:
        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        yield ScenarioCollector.from_parent(self, name=scenario.id, scenario=scenario)


class ScenarioCollector(pytest.Collector):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def collect(self) -> Iterator[pytest.Item]:
        results = self.config.stash[RESULTS_KEY]
        results.scenario_id, results.scenario_title = self.scenario.id, self.scenario.title
        results.steps = [(s.id, s.title) for s in self.scenario.steps]
        results.scenario_version, results.scenario_path = self.scenario.version, str(self.scenario.path)
        results.var_overrides = run_inputs(self.config)[0]
        for host in class_targets(self.config):
            target = HostTarget(host, self.scenario, self.config)
            results.targets.setdefault(target.name, target.spec)
            for step in self.scenario.steps:
                yield StepItem.from_parent(self, name=f"{step.id}[{target.name}]", step=step, target=target)


class StepFailed(Exception):
    def __init__(self, result: StepResult) -> None:
        super().__init__(result.reason)
        self.result = result


class StepItem(pytest.Item):
    def __init__(self, *, step: Step, target: HostTarget, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step
        self.target = target
        self.user_properties += [(pytest_reports.HOST, target.name), (pytest_reports.STEP, step.id),
                                 (pytest_reports.STEP_TITLE, step.title), (pytest_reports.SCENARIO, target.scenario.id)]

    def runtest(self) -> None:
        results = self.config.stash[RESULTS_KEY]
        if self.step.id not in self.target.results and self.target.error is None:
            # Not run ahead (e.g. an xdist worker): this step alone, now.
            run_all([HostWork(self.target, [self.step])], self.config.getoption("labcheck_mode"), workers=1,
                    host_timeout=self.config.getoption("labcheck_host_timeout"), record=recorder(results),
                    host_done=lambda host: None)
        if self.target.error is not None:
            if isinstance(self.target.error, LabcheckError):
                results.usage_errors.append(str(self.target.error))
            raise self.target.error
        result = self.target.results[self.step.id]
        if result.status == UNREACHABLE and self.target.unreachable:
            results.host_errors[self.target.name] = self.target.unreachable
        if result.status == SKIPPED:
            pytest.skip(result.reason)
        if result.status != "passed":
            raise StepFailed(result)

    def repr_failure(self, excinfo, style=None) -> str:
        if isinstance(excinfo.value, StepFailed):
            return REDACTOR.redact(format_failure(excinfo.value.result))
        if isinstance(excinfo.value, LabcheckError):
            return REDACTOR.redact(str(excinfo.value))
        return REDACTOR.redact(str(super().repr_failure(excinfo, style)))

    def reportinfo(self):
        return self.path, self.step.line - 1, f"{self.parent.name}::{self.name}"


_RECORD_LOCK = threading.Lock()


def recorder(results: RunResults) -> Callable[[HostTarget, StepResult], None]:
    def record(host: HostTarget, result: StepResult) -> None:
        with _RECORD_LOCK:
            results.add(result)

    return record


def format_failure(result: StepResult) -> str:
    lines = [f"{result.status.upper()}: {result.title} [{result.host}]", f"  reason: {result.reason}"]
    for action in result.actions:
        lines.append(f"  {'ran' if action.ok else 'FAILED'}: {action.description}")
        if action.error:
            lines.append(f"    {action.error}")
        if not action.ok and action.output:
            lines.extend(f"    | {line}" for line in action.output.splitlines()[-8:])
    for check in result.checks:
        mark = "ok  " if check.passed else "FAIL"
        lines.append(f"  {mark} {check.check}: {check.summary}")
        if not check.passed:
            if check.expected is not None:
                lines.append(f"       expected: {check.expected}")
            if check.actual is not None:
                lines.append(f"       actual:   {check.actual}")
            if check.reason:
                lines.append(f"       {check.reason}")
    if result.hint:
        lines.append(f"  hint: {result.hint}")
    return "\n".join(lines)
