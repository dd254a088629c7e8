"""Scenario files as pytest collectors: one item per step × host, reporting the result its run stored."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import pytest

from labcheck.errors import LabcheckError
from labcheck.report import pytest_reports
from labcheck.report.pytest_reports import RESULTS_KEY
from labcheck.redact import REDACTOR
from labcheck.results import SKIPPED, UNREACHABLE, RunResults, StepResult
from labcheck.runner.classrun import HostTarget, HostWork, StopLimit, run_all, run_inputs
from labcheck.runner.classrun import targets as class_targets
from labcheck.scenario.model import Scenario, ScenarioError, Step, load_scenario


STOP_KEY = pytest.StashKey[StopLimit]()
MARKERS_KEY = pytest.StashKey[set[str]]()


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
        mode = self.config.getoption("labcheck_mode")
        for host in class_targets(self.config):
            target = HostTarget(host, self.scenario, self.config)
            results.targets.setdefault(target.name, target.spec)
            for step in self.scenario.steps:
                # The id spelled out: pytest parses ids it reads back (--lf's cache) into name and [params].
                name = f"{step.id}[{target.name}]"
                item = StepItem.from_parent(self, name=name, nodeid=f"{self.nodeid}::{name}", step=step,
                                            target=target)
                for marker, what in markers(step, host.groups, mode):
                    register_marker(self.config, marker, what)
                    item.add_marker(marker)
                yield item


def markers(step: Step, groups: tuple[str, ...], mode: str) -> list[tuple[str, str]]:
    """A step item's markers, for -m: every step, the run's mode, the step's tags, its host's groups."""
    return [("labcheck", "a step of a labcheck scenario on one host"),
            (f"mode_{mode}", f"a labcheck step in {mode} mode"),
            *((tag, "a labcheck step tag") for tag in step.tags),
            *((f"group_{group}", f"a labcheck step on a host of the inventory group {group}") for group in groups)]


def register_marker(config: pytest.Config, name: str, what: str) -> None:
    """Declared before use, so --strict-markers accepts them and `pytest --markers` lists them."""
    known = config.stash.setdefault(MARKERS_KEY, set())
    if name not in known:
        known.add(name)
        config.addinivalue_line("markers", f"{name}: {what}")


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
        stop = self.config.stash.get(STOP_KEY, None)
        if self.step.id not in self.target.results and stop is not None and stop.reached:
            pytest.skip(f"not run: the run stopped after {stop.failures} failed step(s) (-x/--maxfail)")
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
        session = self.target.session
        if session is not None and self.step.id in session.scenario_errors:
            results.usage_errors.append(str(session.scenario_errors[self.step.id]))
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
