"""The class dashboard: results JSON of one or more runs merged into one self-contained HTML page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import jinja2

from labcheck import __version__
from labcheck.errors import UsageError
from labcheck.results import LABELS, PASSED, SYMBOLS



@dataclass
class Cell:
    """One host × step: its latest state, when it was checked and since when it has had that status."""

    status: str
    reason: str = ""
    hint: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    checked: str = ""  # when the run that produced it finished
    changed: str = ""  # when this status was first seen (in the earliest run of the latest streak)
    previous: str = ""  # the status before the change, when there was one
    source: str = ""  # which results file


@dataclass
class HostRow:
    name: str
    target: str = ""
    reachable: bool = True
    error: str = ""
    last_seen: str = ""
    cells: dict[str, Cell] = field(default_factory=dict)

    def done(self, steps: list[str]) -> int:
        return sum(1 for s in steps if self.cells.get(s) is not None and self.cells[s].status == PASSED)


@dataclass
class Dashboard:
    scenario: dict[str, str]
    steps: list[dict[str, str]]
    hosts: list[HostRow]
    runs: list[dict[str, str]]  # each merged run: source, mode, profile, started, finished, vars
    ignored: list[str] = field(default_factory=list)  # runs left out, and why


def merge(runs: Iterable[tuple[str, dict[str, Any]]]) -> Dashboard:
    """Merge results (source name, results JSON) of one scenario into each host's latest state per step.

    Runs are applied oldest first, so a later run overrides a step it checked and leaves the others;
    a `reset` run's results say whether undoing worked, not the student's progress, so it is left out.
    """
    ordered = sorted(runs, key=lambda pair: (pair[1]["finished"], pair[1]["started"]))
    if not ordered:
        raise UsageError("no results to report", hint="give one or more results JSON files")
    scenario_ids = {data["scenario"]["id"] for _, data in ordered}
    if len(scenario_ids) > 1:
        raise UsageError(f"results of different scenarios ({', '.join(sorted(scenario_ids))}) cannot share a page",
                         hint="make one dashboard per scenario")
    latest = ordered[-1][1]
    steps: dict[str, str] = {}
    for _, data in reversed(ordered):  # the latest run's step titles and order win
        for step in data["steps"]:
            steps.setdefault(step["id"], step["title"])
    order = [s["id"] for s in latest["steps"]] + [s for s in steps if s not in {x["id"] for x in latest["steps"]}]
    hosts: dict[str, HostRow] = {}
    merged: list[dict[str, str]] = []
    ignored: list[str] = []
    for source, data in ordered:
        if data["mode"] == "reset":
            ignored.append(f"{source}: a reset run ({data['finished']})")
            continue
        merged.append({"source": source, "mode": data["mode"], "profile": data["profile"],
                       "started": data["started"], "finished": data["finished"],
                       "vars": " ".join(f"{k}={v}" for k, v in data.get("vars", {}).items())})
        for host in data["hosts"]:
            row = hosts.setdefault(host["name"], HostRow(host["name"]))
            row.target, row.reachable = host["target"] or row.target, host["reachable"]
            row.error, row.last_seen = host.get("error", ""), data["finished"]
            for step in host["steps"]:
                before = row.cells.get(step["id"])
                changed = before.changed if before is not None and before.status == step["status"] else data["finished"]
                previous = (before.status if before is not None and before.status != step["status"]
                            else before.previous if before is not None else "")
                row.cells[step["id"]] = Cell(step["status"], step["reason"], step["hint"], step["checks"],
                                             step["actions"], step["duration"], data["finished"], changed,
                                             previous, source)
    return Dashboard(scenario=dict(latest["scenario"]), steps=[{"id": s, "title": steps[s]} for s in order],
                     hosts=sorted(hosts.values(), key=lambda h: h.name), runs=merged, ignored=ignored)


def when(iso: str) -> str:
    """An ISO 8601 time as people read it: '2024-05-02 14:03:11 UTC'."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso).astimezone(timezone.utc)
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("labcheck.report", "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters["when"] = when
    return environment


def render(dashboard: Dashboard, *, title: str | None = None) -> str:
    """The dashboard as one self-contained HTML page (inline CSS and JS, nothing fetched)."""
    step_ids = [s["id"] for s in dashboard.steps]
    total = len(step_ids)
    rows = [{"host": h, "done": h.done(step_ids), "percent": round(100 * h.done(step_ids) / total) if total else 0}
            for h in dashboard.hosts]
    completion = []
    for step_id in step_ids:
        passed = sum(1 for h in dashboard.hosts if (c := h.cells.get(step_id)) is not None and c.status == PASSED)
        count = len(dashboard.hosts)
        completion.append({"passed": passed, "hosts": count, "percent": round(100 * passed / count) if count else 0})
    details = {h.name: {"target": h.target, "reachable": h.reachable, "error": h.error, "last_seen": h.last_seen,
                        "cells": {s: {**vars(c), "checked": when(c.checked), "changed": when(c.changed)}
                                  for s, c in h.cells.items()}} for h in dashboard.hosts}
    template = _environment().get_template("dashboard.html.j2")
    return template.render(
        title=title or f"{dashboard.scenario['title'] or dashboard.scenario['id']} — class dashboard",
        dashboard=dashboard, rows=rows, completion=completion, details=details,
        steps_meta={s["id"]: s["title"] for s in dashboard.steps}, symbols=SYMBOLS, labels=LABELS,
        generated=when(datetime.now(timezone.utc).isoformat(timespec="seconds")), version=__version__,
    )
