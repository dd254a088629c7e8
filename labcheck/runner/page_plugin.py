"""`labcheck page run` as a pytest session: one item per page command, run in page order in the sandbox.

Each command's outcome is a StepResult of the run's RunResults (the step is the page line, the host
the lab sandbox), so the results JSON, JUnit XML and pytest-html reports are those of a scenario run.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pytest

from labcheck.checks.base import CheckResult, excerpt
from labcheck.page.model import Page, PageCommand
from labcheck.page.run import PASSED, REPLACED, CommandOutcome, Enter, run_command
from labcheck.redact import REDACTOR
from labcheck.results import FAILED, SKIPPED, ActionOutcome, RunResults, StepResult

SANDBOX_HOST = "lab sandbox"
MODE = "page"


def step_id(command: PageCommand) -> str:
    return f"line-{command.line}"


def step_result(page: Page, outcome: CommandOutcome) -> StepResult:
    """A page command's outcome in the shape every report reads."""
    command, completed = outcome.command, outcome.completed
    status = {PASSED: "passed", REPLACED: SKIPPED}.get(outcome.status, FAILED)
    checks, actions = [], []
    if completed is not None:
        ran = completed.exit_status == 0
        actions.append(ActionOutcome(command.text, ran, excerpt(completed.stdout, 2000) if completed.stdout else "",
                                     excerpt(completed.stderr, 1000) if completed.stderr.strip() else ""))
        checks.append(CheckResult("exit_status", ran, "the command exits 0", "0",
                                  "killed at the timeout" if completed.exit_status is None else str(completed.exit_status),
                                  "" if ran else outcome.reason, [command.text]))
        if command.result is not None:
            where = f"{page.path}:{command.result.line}"
            checks.append(CheckResult(
                "page_output", not outcome.mismatches, f"the output agrees with {where}",
                "\n".join(f"{page.path.name}:{m.line} {m.what}: {m.expected}" for m in outcome.mismatches) or None,
                "\n".join(f"{m.actual}" for m in outcome.mismatches) or None,
                outcome.reason if outcome.mismatches else ""))
    return StepResult(step_id=step_id(command), title=command.text, host=SANDBOX_HOST, status=status,
                      reason=outcome.reason, checks=checks, actions=actions, duration=outcome.duration)


class PageRun:
    """The plugin of one page run: claims the page file, runs its commands, keeps their results."""

    def __init__(self, page: Page, *, enter: Enter, replaced: Mapping[str, str], timeout: float,
                 json_path: str | None = None, on_result: Callable[[StepResult], None] = lambda r: None) -> None:
        self.page = page
        self.enter = enter
        self.replaced = dict(replaced)
        self.timeout = timeout
        self.json_path = json_path
        self.on_result = on_result
        self.results = RunResults(scenario_id=page.path.stem, scenario_title=page.title, mode=MODE,
                                  steps=[(step_id(c), c.text) for c in page.commands],
                                  scenario_path=str(page.path), targets={SANDBOX_HOST: "lab-sandbox://"})
        self.timed_out: list[PageCommand] = []  # commands killed at the timeout: the run ends with exit 2

    def pytest_collect_file(self, parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
        if file_path.resolve() == self.page.path.resolve():
            return PageFile.from_parent(parent, path=file_path, run=self)
        return None

    def run(self, command: PageCommand) -> StepResult:
        outcome = run_command(self.page, command, enter=self.enter, replaced=self.replaced, timeout=self.timeout)
        if outcome.completed is not None and outcome.completed.exit_status is None:
            self.timed_out.append(command)
        result = step_result(self.page, outcome)
        self.results.add(result)
        self.on_result(result)
        return result

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if not isinstance(item, PageCommandItem):
            return
        item.user_properties += [("labcheck_host", SANDBOX_HOST),
                                 ("labcheck_step_title", REDACTOR.redact(item.command.text))]
        from _pytest.junitxml import xml_key  # as for scenario steps: classname = page, name = its line

        xml = item.config.stash.get(xml_key, None)
        if xml is not None:
            reporter = xml.node_reporter(getattr(item, "id", item.nodeid))
            reporter.add_attribute("classname", self.page.path.name)
            reporter.add_attribute("name", item.name)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):
        outcome = yield
        report = outcome.get_result()
        result = getattr(item, "step_result", None)
        if report.when == "call" and result is not None and item.config.pluginmanager.hasplugin("html"):
            from pytest_html import extras

            from labcheck.report.html_extras import step_html

            report.extras = [*getattr(report, "extras", []), extras.html(step_html(result))]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.json_path:
            return
        from labcheck.report.json_results import results_json, write_results

        self.results.finished = datetime.now(timezone.utc)
        write_results(self.json_path, results_json(self.results))


class PageFile(pytest.File):
    def __init__(self, *, run: PageRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run

    def collect(self) -> Iterator[pytest.Item]:
        for command in self.run.page.commands:
            yield PageCommandItem.from_parent(self, name=f"{self.path.name}:{command.line}", command=command)


class PageCommandFailed(Exception):
    def __init__(self, result: StepResult) -> None:
        super().__init__(result.reason)
        self.result = result


class PageCommandItem(pytest.Item):
    def __init__(self, *, command: PageCommand, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command = command
        self.step_result: StepResult | None = None

    def runtest(self) -> None:
        assert isinstance(self.parent, PageFile)
        self.step_result = self.parent.run.run(self.command)
        if self.step_result.status == SKIPPED:
            pytest.skip(REDACTOR.redact(self.step_result.reason))
        if self.step_result.status != "passed":
            raise PageCommandFailed(self.step_result)

    def repr_failure(self, excinfo, style=None) -> str:
        if isinstance(excinfo.value, PageCommandFailed):
            from labcheck.runner.items import format_failure

            return REDACTOR.redact(format_failure(excinfo.value.result))
        return REDACTOR.redact(str(super().repr_failure(excinfo, style)))

    def reportinfo(self):
        return self.path, self.command.line - 1, f"{self.path.name}:{self.command.line} {self.command.text}"
