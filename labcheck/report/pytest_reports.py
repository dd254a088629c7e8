"""The report side of a pytest run: redaction of every report and log, results JSON, JUnit names, HTML extras.

Registered by labcheck's runner plugin at configure time; reads the run's RunResults, never the engine.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import pytest

from labcheck import __version__
from labcheck.report.json_results import RunInfo, results_json, write_results
from labcheck.report.redact import REDACTOR, install_log_redaction, redacting
from labcheck.runner.plugin import RESULTS_KEY, StepItem

INFO_KEY = pytest.StashKey[RunInfo]()
UNINSTALL_KEY = pytest.StashKey[Callable[[], None]]()


def register(config: pytest.Config) -> None:
    import labcheck.report.pytest_reports as this

    config.pluginmanager.register(this, "labcheck-reports")
    if config.pluginmanager.hasplugin("html"):
        from labcheck.report import html_extras

        config.pluginmanager.register(html_extras, "labcheck-html")
    config.stash[INFO_KEY] = RunInfo(var_overrides=_var_overrides(config))
    config.stash[UNINSTALL_KEY] = install_log_redaction(REDACTOR)


def _var_overrides(config: pytest.Config) -> dict[str, str]:
    items = config.getoption("labcheck_var", default=[]) or []
    return {key.strip(): value for key, sep, value in (i.partition("=") for i in items) if sep and key.strip()}


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall = config.stash.get(UNINSTALL_KEY, None)
    if uninstall is not None:
        uninstall()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[INFO_KEY].started = datetime.now(timezone.utc)
    # Reports are redacted item by item; what pytest prints itself (INTERNALERROR tracebacks, errors
    # outside any item) goes through the terminal writer, which masks secrets too.
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    writer = getattr(terminal, "_tw", None)
    if writer is not None and hasattr(writer, "_file"):
        writer._file = redacting(writer._file)


def pytest_collection_finish(session: pytest.Session) -> None:
    info = session.config.stash[INFO_KEY]
    items = [item for item in session.items if isinstance(item, StepItem)]
    for item in items:
        info.targets.setdefault(item.target.name, target_uri(item.target))
        info.scenario_version = item.target.scenario.version
        info.scenario_path = str(item.target.scenario.path)
    if items:
        from labcheck.report.html_extras import update_metadata

        scenario = items[0].target.scenario
        update_metadata(session.config, {
            "Scenario": f"{scenario.id} ({scenario.title})",
            "Scenario version": scenario.version or "-",
            "Mode": session.config.getoption("labcheck_mode"),
            "labcheck": __version__,
            "Hosts": ", ".join(f"{name} ({spec})" for name, spec in info.targets.items()),
        })


def target_uri(host: object) -> str:
    """The URI a host of the run is reached by: its --hosts spec, or built from its Target."""
    spec = getattr(host, "spec", None)
    if isinstance(spec, str):
        return spec
    target = getattr(host, "target", None)
    if target is None:
        return ""
    if getattr(target, "backend", "") == "local":
        return "local://"
    user = f"{target.user}@" if getattr(target, "user", None) else ""
    port = f":{target.port}" if getattr(target, "port", None) else ""
    return f"ssh://{user}{getattr(target, 'hostname', '')}{port}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not isinstance(item, StepItem):
        return
    item.user_properties += [("labcheck_host", item.target.name), ("labcheck_step_title", item.step.title)]
    # JUnit: classname = the scenario id, name = step[host], so tools show `scenario.step[host]`.
    from _pytest.junitxml import xml_key

    xml = item.config.stash.get(xml_key, None)
    if xml is not None:
        reporter = xml.node_reporter(getattr(item, "id", item.nodeid))  # pytest 9: a NodeId, not the string
        reporter.add_attribute("classname", item.target.scenario.id)
        reporter.add_attribute("name", item.name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    redact_report(outcome.get_result())


def redact_report(report: pytest.TestReport) -> None:
    """Mask secrets in what every reporter (terminal, JUnit, pytest-html) reads from a test report."""
    if not REDACTOR:
        return
    report.sections = [(header, REDACTOR.redact(content)) for header, content in report.sections]
    longrepr = report.longrepr
    if isinstance(longrepr, str):
        report.longrepr = REDACTOR.redact(longrepr)
    elif isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        report.longrepr = (longrepr[0], longrepr[1], REDACTOR.redact(longrepr[2]))
    elif longrepr is not None:
        # A traceback object: replaced by its redacted text only when it holds a secret.
        text = str(longrepr)
        redacted = REDACTOR.redact(text)
        if redacted != text:
            report.longrepr = redacted


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    info = config.stash[INFO_KEY]
    info.finished = datetime.now(timezone.utc)
    results = config.stash[RESULTS_KEY]
    if config.pluginmanager.hasplugin("labcheck-html"):
        from labcheck.report.html_extras import update_metadata

        update_metadata(config, {"Profile": results.profile or "-"})
    path = config.getoption("labcheck_json")
    if path:
        write_results(path, results_json(results, info))
