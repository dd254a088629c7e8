"""labcheck's pytest plugin: scenario files collected as step × host items, and the `lab_world` fixture."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
import testinfra

from labcheck.checks.base import CheckContext
from labcheck.checks.engine_queries import EngineQueries
from labcheck.errors import LabcheckError
from labcheck.labenv.world import LabWorld
from labcheck.report.redact import REDACTOR
from labcheck.runner.drivers import DRIVERS, make_driver
from labcheck.runner.results import SKIPPED, UNREACHABLE, RunResults, StepResult
from labcheck.runner.steps import MODES, HostSession, run_step
from labcheck.scenario.model import Scenario, ScenarioError, bind, load_scenario, parse_var_overrides
from labcheck.scenario.render import load_secrets_file

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
        hosts = self.config.getoption("hosts") or "local://"
        for spec in [h.strip() for h in hosts.split(",") if h.strip()]:
            target = HostTarget(spec, self.scenario, self.config)
            for step in self.scenario.steps:
                yield StepItem.from_parent(self, name=f"{step.id}[{target.name}]", step=step, target=target)


class HostTarget:
    """One host of the run; connects (and binds the scenario) on first use, once."""

    def __init__(self, spec: str, scenario: Scenario, config: pytest.Config) -> None:
        self.spec = spec
        self.scenario = scenario
        self.config = config
        self.name = spec.split("://", 1)[-1].split("?")[0] or "local"
        self.session: HostSession | None = None
        self.unreachable: str | None = None
        self.results: dict[str, StepResult] = {}

    def connect(self) -> HostSession:
        if self.session is not None:
            return self.session
        option = self.config.option
        host = testinfra.get_host(self.spec, ssh_config=option.ssh_config, ssh_identity_file=option.ssh_identity_file,
                                  sudo=option.sudo, sudo_user=option.sudo_user)
        try:
            user = host.user()
            facts = {"home": user.home, "user": user.name, "host": self.name}
        except Exception as exc:  # connection refused, auth, host key: this host only
            self.unreachable = f"{exc.__class__.__name__}: {exc}".strip()
            raise
        secrets_file = self.config.getoption("labcheck_secrets_file")
        bound = bind(self.scenario, profile=self.config.getoption("labcheck_profile"),
                     overrides=parse_var_overrides(self.config.getoption("labcheck_var")),
                     host_facts=facts, secrets=load_secrets_file(secrets_file) if secrets_file else None)
        driver_name = self.config.getoption("labcheck_driver") or ("native" if self.spec.startswith("local") else "skopeo")
        driver = make_driver(driver_name, host, bound.env)
        queries = EngineQueries(env=bound.env)
        self.session = HostSession(self.name, CheckContext(host=host, engine=queries, env=bound.env), bound, driver)
        self.config.stash[RESULTS_KEY].profile = bound.profile or ""
        return self.session


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
        mode = self.config.getoption("labcheck_mode")
        session: HostSession | None = None
        if self.target.unreachable is None:
            try:
                session = self.target.connect()
            except LabcheckError as exc:
                results.usage_errors.append(str(exc))
                raise
            except Exception:
                if self.target.unreachable is None:
                    raise
        if session is None:
            result = StepResult(self.step.id, self.step.title, self.target.name, UNREACHABLE,
                                reason=f"host unreachable: {self.target.unreachable}", hint=self.step.hint)
            results.host_errors[self.target.name] = self.target.unreachable
        else:
            result = run_step(self.step, session, "verify" if mode == "check" else mode, self.target.results)
        self.target.results[self.step.id] = result
        results.add(result)
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
def lab_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabWorld]:
    """A running offline lab world of the test session's own, torn down at the end.

    LABCHECK_TEST_STATE_DIR reuses (and keeps running) a lab world in that directory instead.
    """
    reuse = os.environ.get("LABCHECK_TEST_STATE_DIR")
    world = LabWorld(reuse or tmp_path_factory.mktemp("lab", numbered=True))
    world.up()
    yield world
    if not reuse:
        world.down()
