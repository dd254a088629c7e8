"""pytest-html hooks: each step × host row shows what ran, expected vs actual, output, hint; run metadata on top."""

from __future__ import annotations

from html import escape as html_escape

import pytest

from labcheck.checks.base import excerpt
from labcheck.redact import REDACTOR
from labcheck.report.pytest_reports import HOST, RESULTS_KEY, STEP, STEP_TITLE, step_properties
from labcheck.results import StepResult

STYLE = ("<style>.labcheck-step{font-family:sans-serif;font-size:13px;padding:4px 8px}"
         ".labcheck-step table{border-collapse:collapse;margin:4px 0}"
         ".labcheck-step td,.labcheck-step th{border:1px solid #ccc;padding:2px 6px;vertical-align:top;text-align:left}"
         ".labcheck-step pre{margin:0;white-space:pre-wrap;max-width:60em}"
         ".labcheck-step .ok{color:#1a7f37}.labcheck-step .bad{color:#b42318;font-weight:bold}</style>")


def escape(text: str) -> str:
    """text for HTML, its secrets masked first: once escaped, a secret holding & or ' no longer reads as itself."""
    return html_escape(REDACTOR.redact(text))


def _pre(text: str | None) -> str:
    return f"<pre>{escape(text)}</pre>" if text else ""


def step_html(result: StepResult) -> str:
    """The HTML fragment for one step × host: actions, checks (expected/actual), output excerpts, hint."""
    parts = [STYLE, '<div class="labcheck-step">',
             f"<p><b>{escape(result.status.upper())}</b> {escape(result.title)} [{escape(result.host)}]"
             f" in {result.duration:.2f} s</p>"]
    if result.reason:
        parts.append(f"<p>reason: {escape(result.reason)}</p>")
    if result.actions:
        parts.append("<table><tr><th>action</th><th></th><th>output</th></tr>")
        for action in result.actions:
            mark = '<span class="ok">ran</span>' if action.ok else '<span class="bad">failed</span>'
            parts.append(f"<tr><td><code>{escape(action.description)}</code></td><td>{mark}</td>"
                         f"<td>{_pre(action.error)}{_pre(excerpt(action.output, 600) if action.output else '')}</td></tr>")
        parts.append("</table>")
    if result.checks:
        parts.append("<table><tr><th>check</th><th></th><th>expected</th><th>actual</th><th>reason</th>"
                     "<th>commands / output</th></tr>")
        for check in result.checks:
            mark = '<span class="ok">ok</span>' if check.passed else '<span class="bad">FAIL</span>'
            commands = "".join(_pre(c) for c in check.commands)
            output = _pre(excerpt(check.output, 600)) if check.output else ""
            parts.append(f"<tr><td>{escape(check.check)}: {escape(check.summary)}</td><td>{mark}</td>"
                         f"<td>{_pre(check.expected)}</td><td>{_pre(check.actual)}</td>"
                         f"<td>{escape(check.reason)}</td><td>{commands}{output}</td></tr>")
        parts.append("</table>")
    if result.hint:
        parts.append(f"<p>hint: <code>{escape(result.hint)}</code></p>")
    parts.append("</div>")
    return REDACTOR.redact("".join(parts))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    result = _step_result(item)
    if report.when == "call" and result is not None:
        from pytest_html import extras

        report.extras = [*getattr(report, "extras", []), extras.html(step_html(result))]
        # Steps of a class run are carried out before their items report: show the step's own time.
        report.duration = max(report.duration, result.duration)
    return report


def _step_result(item: pytest.Item) -> StepResult | None:
    properties = step_properties(item)
    if properties is None:
        return None
    return item.config.stash[RESULTS_KEY].result(properties[HOST], properties[STEP])


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    cells.insert(2, '<th class="sortable" data-column-type="host">Host</th>')
    cells.insert(3, "<th>Step</th>")


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    properties = dict(getattr(report, "user_properties", []))
    cells.insert(2, f'<td class="col-host">{escape(str(properties.get(HOST, "")))}</td>')
    cells.insert(3, f'<td class="col-step">{escape(str(properties.get(STEP_TITLE, "")))}</td>')


def update_metadata(config: pytest.Config, values: dict[str, str]) -> None:
    """Add (redacted) labcheck fields to pytest-metadata's table, which pytest-html shows at the top."""
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return
    metadata = config.stash.get(metadata_key, None)
    if metadata is None:
        return
    metadata.update({key: REDACTOR.redact(value) for key, value in values.items()})
