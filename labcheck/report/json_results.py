"""Results JSON: a run's RunResults as versioned, redacted data — the source every report is rendered from.

The schema is `schemas/results.schema.json` (published as docs/results-schema.json).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from labcheck import __version__
from labcheck.errors import UsageError
from labcheck.redact import REDACTOR, Redactor
from labcheck.results import RunResults, Status, StepResult

SCHEMA_VERSION = "1"
STATUSES = tuple(Status)



@lru_cache(maxsize=1)
def results_schema() -> dict[str, Any]:
    return json.loads(resources.files("labcheck.report").joinpath("schemas/results.schema.json").read_text())


def _step_json(result: StepResult) -> dict[str, Any]:
    data = result.to_json()
    data["id"] = data.pop("step_id")
    del data["host"]
    data["duration"] = round(max(result.duration, 0.0), 3)
    data["checks"] = [asdict(c) for c in result.checks]
    return data


def results_json(results: RunResults, *, redactor: Redactor = REDACTOR) -> dict[str, Any]:
    """The results of a run as schema-shaped data, every string redacted."""
    finished = results.finished or datetime.now(timezone.utc)
    order = [step_id for step_id, _ in results.steps]
    names = list(dict.fromkeys([*results.targets, *results.hosts, *results.host_errors]))
    hosts = []
    for name in names:
        steps = results.hosts.get(name, {})
        ordered = sorted(steps.values(), key=lambda r: order.index(r.step_id) if r.step_id in order else len(order))
        host: dict[str, Any] = {"name": name, "target": results.targets.get(name, ""),
                                "reachable": name not in results.host_errors,
                                "steps": [_step_json(r) for r in ordered]}
        if name in results.host_errors:
            host["error"] = results.host_errors[name]
        hosts.append(host)
    summary = {str(status): 0 for status in STATUSES}
    for result in results.all_results():
        summary[result.status] = summary.get(result.status, 0) + 1
    data = {
        "schema_version": SCHEMA_VERSION,
        "labcheck_version": __version__,
        "scenario": {"id": results.scenario_id, "title": results.scenario_title, "version": results.scenario_version,
                     "path": results.scenario_path},
        "mode": results.mode,
        "profile": results.profile,
        "vars": dict(results.var_overrides),
        "started": results.started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "steps": [{"id": step_id, "title": title} for step_id, title in results.steps],
        "hosts": hosts,
        "summary": summary,
        "exit_code": results.exit_code(),
        "usage_errors": list(dict.fromkeys(results.usage_errors)),
    }
    return redactor.redact_data(data)


def validate_results(data: Any, *, source: str = "results") -> None:
    """UsageError naming the first place where data does not follow the results schema."""
    validator = jsonschema.Draft202012Validator(results_schema(), format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise UsageError(f"{source}: not labcheck results JSON at {where}: {error.message}",
                         hint="write it with `labcheck run|verify|check … --json FILE`")


def write_results(path: str | Path, data: dict[str, Any]) -> Path:
    """Write results JSON atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    temporary.replace(path)
    return path


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and validate one results JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no results file {path}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    validate_results(data, source=str(path))
    return data
