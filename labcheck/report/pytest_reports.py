"""The report side of a pytest run: redaction of every report and log, results JSON, JUnit names, HTML extras.

Registered by labcheck's runner plugin once a run has labcheck items.
It reads data only: the run's RunResults in the config's stash and the properties each step item
carries (`labcheck_host`, `labcheck_step`, `labcheck_step_title`, `labcheck_scenario`) — never
runner classes, so the runner depends on the reports and not the other way round.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import pytest

from labcheck import __version__
from labcheck.report.json_results import results_json, write_results
from labcheck.redact import REDACTOR, install_log_redaction, redacting
from labcheck.results import RunResults

RESULTS_KEY = pytest.StashKey[RunResults]()
UNINSTALL_KEY = pytest.StashKey[Callable[[], None]]()

# What every step item carries in its user_properties (they travel with test reports).
HOST, STEP, STEP_TITLE, SCENARIO = "labcheck_host", "labcheck_step", "labcheck_step_title", "labcheck_scenario"


def step_properties(item: pytest.Item) -> dict[str, Any] | None:
    """A labcheck step item's properties, None for any other item."""
    properties = dict(item.user_properties)
    return properties if STEP in properties else None


def pytest_configure(config: pytest.Config) -> None:
    # Called when the runner loads this plugin (pytest_configure is historic), after it stashed the results.
    if config.pluginmanager.hasplugin("html"):
        from labcheck.report import html_extras

        config.pluginmanager.register(html_extras, "labcheck.report.html_extras")
    config.stash[UNINSTALL_KEY] = install_log_redaction(REDACTOR)
    redact_terminal(config)


def pytest_sessionstart(session: pytest.Session) -> None:
    redact_terminal(session.config)  # registered during configure: the terminal reporter may be newer


def redact_terminal(config: pytest.Config) -> None:
    """Reports are redacted item by item; what pytest prints itself (INTERNALERROR tracebacks, errors
    outside any item) goes through the terminal writer, which masks secrets too. pytest has no
    public way to wrap the writer's stream."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    writer = getattr(terminal, "_tw", None)
    if writer is not None and hasattr(writer, "_file"):
        writer._file = redacting(writer._file)


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall = config.stash.get(UNINSTALL_KEY, None)
    if uninstall is not None:
        uninstall()


def pytest_collection_finish(session: pytest.Session) -> None:
    results = session.config.stash[RESULTS_KEY]
    if not results.targets:
        return
    from labcheck.report.html_extras import update_metadata

    update_metadata(session.config, {
        "Scenario": f"{results.scenario_id} ({results.scenario_title})",
        "Scenario version": results.scenario_version or "-",
        "Mode": results.mode,
        "labcheck": __version__,
        "Hosts": ", ".join(f"{name} ({uri})" for name, uri in results.targets.items()),
    })


def pytest_runtest_setup(item: pytest.Item) -> None:
    properties = step_properties(item)
    if properties is None:
        return
    # JUnit: classname = the scenario id, name = step[host], so tools show `scenario.step[host]`.
    # No public API sets the classname of a non-Python item; record_xml_attribute is a fixture.
    from _pytest.junitxml import xml_key

    xml = item.config.stash.get(xml_key, None)
    if xml is not None:
        reporter = xml.node_reporter(getattr(item, "id", item.nodeid))  # pytest 9: a NodeId, not the string
        reporter.add_attribute("classname", properties[SCENARIO])
        reporter.add_attribute("name", item.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    redact_report(report)
    return report


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
    results = config.stash[RESULTS_KEY]
    results.finished = datetime.now(timezone.utc)
    if config.pluginmanager.hasplugin("labcheck.report.html_extras"):
        from labcheck.report.html_extras import update_metadata

        update_metadata(config, {"Profile": results.profile or "-"})
    path = config.getoption("labcheck_json")
    if path:
        write_results(path, results_json(results))
