"""labcheck's pytest plugin: scenario files collected as step × host items, and the `lab_world` fixture."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from labcheck.errors import LabcheckError
from labcheck.report.redact import REDACTOR
from labcheck.runner.classrun import POOL_KEY, HostTarget, HostWork, run_all
from labcheck.runner.classrun import add_options as add_class_options
from labcheck.runner.classrun import targets as class_targets
from labcheck.runner.classview import LiveView
from labcheck.runner.drivers import DRIVERS
from labcheck.runner.results import SKIPPED, UNREACHABLE, RunResults, StepResult
from labcheck.runner.steps import MODES
from labcheck.scenario.model import Scenario, ScenarioError, load_scenario

if TYPE_CHECKING:
    from labcheck.labenv.world import LabWorld

RESULTS_KEY = pytest.StashKey[RunResults]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("labcheck", "labcheck scenarios")
    group.addoption("--labcheck-mode", choices=MODES, default="verify",
                    help="run: do then verify each step; verify: checks only (default); "
                    "check: verify for a student; reset: undo every step")
    group.addoption("--labcheck-profile", default=None, help="the scenario profile (default: its default_profile)")
    group.addoption("--labcheck-var", action="append", default=[], metavar="NAME=VALUE",
                    help="override a scenario variable (repeatable)")
    group.addoption("--labcheck-driver", choices=DRIVERS, default=None,
                    help="who carries out engine actions: native (labcheck's engine, on this machine) or "
                    "skopeo (the real skopeo on the host); default: native locally, skopeo on remote hosts")
    group.addoption("--labcheck-secrets-file", default=None, metavar="FILE",
                    help="KEY=VALUE file that secret('KEY') reads besides the environment")
    add_class_options(group)
    group.addoption("--labcheck-json", default=None, metavar="FILE",
                    help="write the run's results as JSON (docs/results-schema.json), secrets redacted")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS_KEY] = RunResults(mode=config.getoption("labcheck_mode"))
    from labcheck.report import pytest_reports  # the report side: redaction, JSON, JUnit names, HTML extras

    pytest_reports.register(config)


def pytest_collect_file(parent: pytest.Collector, file_path: Path):
    """Claim YAML files under a `scenarios/` directory, or named on the command line."""
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    explicit = {Path(a.split("::")[0]).resolve() for a in parent.config.args}
    if file_path.parent.name == "scenarios" or file_path.resolve() in explicit:
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


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
        for host in class_targets(self.config):
            target = HostTarget(host, self.scenario, self.config)
            for step in self.scenario.steps:
                yield StepItem.from_parent(self, name=f"{step.id}[{target.name}]", step=step, target=target)


class StepFailed(Exception):
    def __init__(self, result: StepResult) -> None:
        super().__init__(result.reason)
        self.result = result


class StepItem(pytest.Item):
    def __init__(self, *, step, target: HostTarget, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step
        self.target = target

    def runtest(self) -> None:
        results = self.config.stash[RESULTS_KEY]
        if self.step.id not in self.target.results and self.target.error is None:
            # Not run ahead (e.g. an xdist worker): this step alone, now.
            run_all([HostWork(self.target, [self.step])], self.config.getoption("labcheck_mode"), workers=1,
                    host_timeout=self.config.getoption("host_timeout"), record=_recorder(results),
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


def _recorder(results: RunResults):
    def record(host: HostTarget, result: StepResult) -> None:
        with _RECORD_LOCK:
            results.add(result)

    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session):
    """Run the selected steps ahead, grouped by host, hosts in parallel; each item then reports its result."""
    config = session.config
    if not config.option.collectonly and not hasattr(config, "workerinput"):
        _run_ahead(session)
    return (yield)


def _run_ahead(session: pytest.Session) -> None:
    config = session.config
    works: dict[int, HostWork] = {}
    for item in session.items:
        if isinstance(item, StepItem):
            works.setdefault(id(item.target), HostWork(item.target, [])).steps.append(item.step)
    if not works:
        return
    results = config.stash[RESULTS_KEY]
    names = [work.host.name for work in works.values()]
    for name in names:
        results.hosts.setdefault(name, {})
    view = _live_view(config, results, names)
    if view is not None:
        view.start()
    try:
        run_all(list(works.values()), config.getoption("labcheck_mode"), workers=config.getoption("workers"),
                host_timeout=config.getoption("host_timeout"), record=_recorder(results),
                host_done=lambda host: view.host_done(host.name) if view is not None else None)
    finally:
        if view is not None:
            view.finish()
    bound = next((w.host.session.bound for w in works.values() if w.host.session is not None), None)
    if bound is not None:
        results.profile = bound.profile or ""


def _live_view(config: pytest.Config, results: RunResults, hosts: list[str]) -> LiveView | None:
    """Only for a class (several hosts), and only where pytest writes to a terminal report."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if len(hosts) < 2 or reporter is None or config.getoption("labcheck_mode") == "check":
        return None
    capture = config.pluginmanager.getplugin("capturemanager")

    def write(text: str) -> None:
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write(text, flush=True)
        else:
            reporter.write(text, flush=True)

    return LiveView(results, hosts, write, tty=reporter.isatty)


def pytest_unconfigure(config: pytest.Config) -> None:
    if POOL_KEY in config.stash:
        config.stash[POOL_KEY].close_all()


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


@pytest.fixture(scope="session")
def lab_world() -> Iterator[LabWorld]:
    """A running offline lab world of the test session's own, torn down at the end.

    LABCHECK_TEST_STATE_DIR reuses (and keeps running) a lab world in that directory instead.
    """
    from labcheck.labenv.world import LabWorld  # here: a verify of a class never needs it

    reuse = os.environ.get("LABCHECK_TEST_STATE_DIR")
    if reuse:
        state_dir = Path(reuse)
    else:
        # Not under pytest's 0700 base directory: tests' student users must reach the CA bundle,
        # registries.conf and the Docker socket, and changing the modes of pytest's shared
        # directory would race with any other pytest run on the machine.
        state_dir = Path(tempfile.mkdtemp(prefix="labcheck-lab-"))
        state_dir.chmod(0o711)
    world = LabWorld(state_dir)
    world.up()
    yield world
    if not reuse:
        world.down()
        shutil.rmtree(state_dir, ignore_errors=True)
