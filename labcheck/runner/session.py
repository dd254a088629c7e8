"""A pytest session with labcheck in play: the run's results, the report plugin, and the run-ahead
executor that carries out the selected steps, grouped by host, before pytest's loop reports them."""

from __future__ import annotations

import pytest

from labcheck.report import pytest_reports
from labcheck.report.pytest_reports import RESULTS_KEY
from labcheck.results import RunResults
from labcheck.runner.classrun import POOL_KEY, HostWork, StopLimit, run_all
from labcheck.runner.classview import LiveView
from labcheck.runner.items import STOP_KEY, StepItem, recorder, register_marker
from labcheck.runner.options import MODES
from labcheck.scenario.model import Step


# pytest-testinfra's options labcheck does not carry out: refused with a line rather than ignored.
# (--hosts, --ssh-config, --ansible-inventory and --ssh-identity-file are honoured.)
REFUSED_TESTINFRA = {
    "sudo": "--sudo: labcheck checks a host as its own user (the student's), never through sudo",
    "sudo_user": "--sudo-user: labcheck checks a host as its own user (the student's), never through sudo",
    "ssh_extra_args": "--ssh-extra-args: labcheck's SSH connections are paramiko's, not the ssh binary's; "
                      "put host settings in --ssh-config",
    "force_ansible": "--force-ansible: labcheck reads --ansible-inventory itself and connects over SSH",
}
CONNECTIONS = ("ssh", "paramiko")  # both mean labcheck's one paramiko connection per host


def refuse_unsupported_testinfra_options(config: pytest.Config) -> None:
    for dest, why in REFUSED_TESTINFRA.items():
        if getattr(config.option, dest, None):
            raise pytest.UsageError(f"labcheck: {why}")
    connection = getattr(config.option, "connection", None)
    if connection and connection not in CONNECTIONS:
        raise pytest.UsageError(f"labcheck: --connection {connection}: labcheck reaches hosts as local:// or over "
                                "its own SSH connection (--connection ssh or paramiko)")


def start(config: pytest.Config) -> None:
    """Called once by the plugin when labcheck comes into play (runner/plugin.py's activate)."""
    refuse_unsupported_testinfra_options(config)
    config.stash[RESULTS_KEY] = RunResults(mode=config.getoption("labcheck_mode"))
    # The report side (redaction, JSON, JUnit names, HTML extras) reads the results stashed above.
    config.pluginmanager.register(pytest_reports, "labcheck.report.pytest_reports")
    config.pluginmanager.register(Hooks(), "labcheck.runner.session")
    register_marker(config, "labcheck", "a step of a labcheck scenario on one host")
    for mode in MODES:
        register_marker(config, f"mode_{mode}", f"a labcheck step in {mode} mode")


class Hooks:
    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        """Run the selected steps ahead, grouped by host, hosts in parallel; each item then reports its result."""
        config = session.config
        if not config.option.collectonly and not hasattr(config, "workerinput"):
            _run_ahead(session)
        return (yield)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if POOL_KEY in config.stash:
            config.stash[POOL_KEY].close_all()


def _run_ahead(session: pytest.Session) -> None:
    config = session.config
    works: dict[int, HostWork] = {}
    for item in session.items:
        if isinstance(item, StepItem):
            works.setdefault(id(item.target), HostWork(item.target, [])).steps.append(item.step)
    if not works:
        return
    mode = config.getoption("labcheck_mode")
    if mode == "run":
        for work in works.values():
            work.steps = with_requirements(work.host.scenario.steps, work.steps)
    # -x and --maxfail: pytest stops reporting at the limit; the steps run ahead stop there too.
    stop = config.stash[STOP_KEY] = StopLimit(config.getoption("maxfail") or 0)
    results = config.stash[RESULTS_KEY]
    names = [work.host.name for work in works.values()]
    for name in names:
        results.hosts.setdefault(name, {})
    view = _live_view(config, results, names)
    if view is not None:
        view.start()
    try:
        run_all(list(works.values()), mode, workers=config.getoption("labcheck_workers"),
                host_timeout=config.getoption("labcheck_host_timeout"), record=recorder(results),
                host_done=lambda host: view.host_done(host.name) if view is not None else None, stop=stop)
    finally:
        if view is not None:
            view.finish()
    bound = [(w.host.name, w.host.session.bound) for w in works.values() if w.host.session is not None]
    results.profile = ", ".join(dict.fromkeys(b.profile or "" for _, b in bound if b.profile))
    results.profile_why = {name: f"profile {b.profile}: {b.profile_why}" for name, b in bound if b.profile_why}


def with_requirements(scenario_steps: list[Step], selected: list[Step]) -> list[Step]:
    """The selected steps and, before them, every step they require (transitively), in scenario order:
    in run mode `-k STEP` or `--lf` re-runs a step with what it builds on, not skipped for it."""
    by_id = {step.id: step for step in scenario_steps}
    wanted = {step.id for step in selected}
    pending = list(wanted)
    while pending:
        for required in by_id[pending.pop()].requires:
            if required in by_id and required not in wanted:
                wanted.add(required)
                pending.append(required)
    return [step for step in scenario_steps if step.id in wanted]


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

    writer = config.get_terminal_writer()
    # Cursor control only where pytest itself marks up (a terminal, not TERM=dumb, NO_COLOR honoured).
    return LiveView(results, hosts, write, tty=writer.hasmarkup, width=lambda: writer.fullwidth)
