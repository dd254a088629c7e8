"""Reports without a lab: results JSON and its schema, merging runs, the dashboard page, log redaction."""

from __future__ import annotations

import base64
import io
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest

from labcheck.errors import UsageError
from labcheck.report.dashboard import merge, render
from labcheck.report.json_results import load_results, results_json, results_schema, write_results
from labcheck.redact import RedactingStream, Redactor, install_log_redaction, redacted_output
from labcheck.results import ActionOutcome, CheckResult, RunResults, StepResult

ROOT = Path(__file__).parent.parent.parent
PASSWORD = "Zq7/secret+Wv9"  # / and + have URL-encoded forms
CREDS = f"student:{PASSWORD}"


def forms_of_the_password() -> set[str]:
    """Written out here rather than taken from leak_forms, so the test does not trust the code it tests."""
    return {PASSWORD, quote(PASSWORD, safe=""), base64.b64encode(CREDS.encode()).decode(),
            base64.b64encode(PASSWORD.encode()).decode()}


def sample_results(*, leaky: bool = False) -> RunResults:
    secret = f" --dest-creds {CREDS} auth={base64.b64encode(CREDS.encode()).decode()}" if leaky else ""
    results = RunResults(scenario_id="demo", scenario_title="Demo lab", mode="verify", profile="offline",
                         steps=[("one", "Step one"), ("two", "Step two")])
    results.add(StepResult("one", "Step one", "alice", "passed", duration=0.25,
                           checks=[CheckResult("file", True, "/tmp/x exists", expected="a file", actual="a file")]))
    results.add(StepResult("two", "Step two", "alice", "failed", reason="no image" + secret, hint="skopeo copy" + secret,
                           actions=[ActionOutcome("copy a b" + secret, False, "out" + secret, "boom")],
                           checks=[CheckResult("registry_image", False, "image there", expected="sha256:1",
                                               actual=f"https://student:{quote(PASSWORD, safe='')}@r/v2/",
                                               reason="absent", commands=["skopeo inspect" + secret])]))
    results.add(StepResult("one", "Step one", "bob", "unreachable", reason="host unreachable: refused"))
    results.host_errors["bob"] = "refused"
    return results


def run_json(results: RunResults, finished: datetime, *, redactor: Redactor | None = None) -> dict:
    results.started, results.finished, results.scenario_version = finished - timedelta(seconds=5), finished, "1"
    results.targets = {"alice": "local://alice", "bob": "ssh://bob@10.0.0.2"}
    return results_json(results, redactor=redactor or Redactor())


def test_results_json_validates_against_the_published_schema(tmp_path: Path) -> None:
    published = json.loads((ROOT / "docs" / "results-schema.json").read_text())
    assert published == results_schema(), "docs/results-schema.json must be the schema the package ships"
    data = run_json(sample_results(), datetime(2024, 5, 2, 14, 0, tzinfo=timezone.utc))
    jsonschema.Draft202012Validator(published).validate(data)
    assert [h["name"] for h in data["hosts"]] == ["alice", "bob"]
    assert data["hosts"][1] == {"name": "bob", "target": "ssh://bob@10.0.0.2", "reachable": False, "error": "refused",
                                "steps": [{"id": "one", "title": "Step one", "status": "unreachable",
                                           "reason": "host unreachable: refused", "hint": "", "checks": [],
                                           "actions": [], "duration": 0.0}]}
    assert data["summary"] == {"passed": 1, "failed": 1, "skipped": 0, "error": 0, "unreachable": 1}
    assert data["exit_code"] == 3  # bob could not be reached: that outranks alice's failed step
    # What is written reads back, validated.
    assert load_results(write_results(tmp_path / "r.json", data)) == data


def test_results_json_masks_every_form_of_a_secret() -> None:
    redactor = Redactor()
    redactor.add(CREDS)
    data = run_json(sample_results(leaky=True), datetime(2024, 5, 2, 14, 0, tzinfo=timezone.utc), redactor=redactor)
    text = json.dumps(data)
    assert not [form for form in forms_of_the_password() if form in text]
    assert "--dest-creds ***" in data["hosts"][0]["steps"][1]["hint"]
    # user:password with its password URL-encoded is masked whole, as every mixed encoding is
    assert data["hosts"][0]["steps"][1]["checks"][0]["actual"] == "https://***@r/v2/"


def test_a_file_that_is_not_results_json_is_a_usage_error(tmp_path: Path) -> None:
    data = run_json(sample_results(), datetime(2024, 5, 2, 14, 0, tzinfo=timezone.utc))
    data["hosts"][0]["steps"][0]["status"] = "green"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(UsageError, match=r"bad.json: not labcheck results JSON at hosts/0/steps/0/status"):
        load_results(bad)
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(UsageError, match="not JSON"):
        load_results(tmp_path / "junk.json")


def verify_run(host: str, statuses: dict[str, str], finished: datetime, *, mode: str = "verify") -> dict:
    results = RunResults(scenario_id="demo", scenario_title="Demo lab", mode=mode,
                         steps=[("one", "Step one"), ("two", "Step two"), ("three", "Step three")])
    for step_id, status in statuses.items():
        results.add(StepResult(step_id, f"Step {step_id}", host, status, hint=f"do {step_id}"))
    results.started, results.finished = finished - timedelta(seconds=3), finished
    results.targets = {host: f"local://{host}"}
    return results_json(results, redactor=Redactor())


def test_merging_runs_keeps_each_steps_latest_state_and_when_it_changed() -> None:
    t0 = datetime(2024, 5, 2, 9, 0, tzinfo=timezone.utc)
    runs = [
        ("late.json", verify_run("alice", {"one": "passed", "two": "passed", "three": "failed"}, t0 + timedelta(hours=2))),
        ("early.json", verify_run("alice", {"one": "passed", "two": "failed", "three": "failed"}, t0)),
        ("only-one.json", verify_run("alice", {"one": "passed"}, t0 + timedelta(hours=3))),  # a -k run
        ("reset.json", verify_run("alice", {"one": "passed", "two": "passed", "three": "passed"},
                                  t0 + timedelta(hours=4), mode="reset")),
        ("bob.json", verify_run("bob", {"one": "failed", "two": "failed", "three": "failed"}, t0 + timedelta(hours=1))),
    ]
    dashboard = merge(runs)
    alice, bob = dashboard.hosts
    assert (alice.name, bob.name) == ("alice", "bob")
    assert {s: c.status for s, c in alice.cells.items()} == {"one": "passed", "two": "passed", "three": "failed"}
    assert alice.cells["two"].changed == (t0 + timedelta(hours=2)).isoformat(timespec="seconds")
    assert alice.cells["two"].previous == "failed"
    assert alice.cells["one"].changed == t0.isoformat(timespec="seconds")  # passed since the first run
    assert alice.cells["one"].checked == (t0 + timedelta(hours=3)).isoformat(timespec="seconds")
    assert alice.cells["three"].source == "late.json"
    assert alice.done([s["id"] for s in dashboard.steps]) == 2
    assert [r["source"] for r in dashboard.runs] == ["early.json", "bob.json", "late.json", "only-one.json"]
    assert dashboard.ignored and "reset.json" in dashboard.ignored[0]


def test_runs_of_different_scenarios_do_not_merge() -> None:
    t0 = datetime(2024, 5, 2, 9, 0, tzinfo=timezone.utc)
    other = verify_run("bob", {"one": "passed"}, t0)
    other["scenario"]["id"] = "another-lab"
    with pytest.raises(UsageError, match="different scenarios"):
        merge([("a.json", verify_run("alice", {"one": "passed"}, t0)), ("b.json", other)])


def test_the_page_has_a_cell_per_host_and_step_with_status_symbol_and_no_outside_resources() -> None:
    t0 = datetime(2024, 5, 2, 9, 0, tzinfo=timezone.utc)
    page = render(merge([("a.json", verify_run("alice", {"one": "passed", "two": "failed"}, t0)),
                         ("b.json", verify_run("bob<script>", {"one": "skipped"}, t0))]))
    assert 'data-host="alice" data-step="one"\n                data-status="passed"' in page
    assert page.count('class="cell s-') == 6
    assert 'data-status="not-run"' in page  # alice's step three, bob's two and three
    assert "✘</button>" in page and "–</button>" in page
    assert "<script>\"" not in page and "bob&lt;script&gt;" in page  # host names are escaped, in HTML and JSON
    assert "http://" not in page and "https://" not in page and " src=" not in page


def test_log_records_are_redacted_whoever_logs_them() -> None:
    redactor = Redactor()
    redactor.add(CREDS)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("labcheck.test.child")  # a child logger: root-logger filters would not see it
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    before = logging.getLogRecordFactory()
    uninstall = install_log_redaction(redactor)
    try:
        logger.debug("RUN %s", f"skopeo copy --dest-creds {CREDS}")
        try:
            raise RuntimeError(f"auth {base64.b64encode(CREDS.encode()).decode()} refused")
        except RuntimeError:
            logger.exception("copy failed for %s", PASSWORD)
    finally:
        uninstall()
        logger.removeHandler(handler)
    logger.debug("after: %s", PASSWORD)  # not redacted any more: the factory is gone
    text = stream.getvalue()
    assert "RUN skopeo copy --dest-creds ***" in text
    assert "RuntimeError: auth *** refused" in text
    assert not [form for form in forms_of_the_password() if form in text]
    assert logging.getLogRecordFactory() is before


def test_a_redacting_stream_masks_secrets_written_in_pieces() -> None:
    redactor = Redactor()
    redactor.add(CREDS)
    out = io.StringIO()
    stream = RedactingStream(out, redactor)
    stream.write(f"INTERNALERROR> RuntimeError: {PASSWORD[:5]}")  # half a secret: held back
    assert out.getvalue() == ""
    stream.write(f"{PASSWORD[5:]} refused\nprogress [1/5]")
    stream.write("\r")
    stream.write(f"tail {quote(PASSWORD, safe='')}")
    stream.flush()
    text = out.getvalue()
    assert text == "INTERNALERROR> RuntimeError: *** refused\nprogress [1/5]\rtail ***"
    assert stream.isatty() is False  # the rest is the wrapped stream's


def test_redacted_output_wraps_and_restores_stdout_and_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    redactor = Redactor()
    redactor.add(CREDS)
    import sys

    before = sys.stdout, sys.stderr
    with redacted_output(redactor):
        print(f"token {CREDS}")
        print(f"error {PASSWORD}", file=sys.stderr)
    assert (sys.stdout, sys.stderr) == before
    captured = capsys.readouterr()
    assert captured.out == "token ***\n" and captured.err == "error ***\n"
