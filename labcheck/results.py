"""What a run produced, per host and step: the one results model every report is rendered from.

The bottom of the harness: plain data, importing nothing of labcheck's, so the runner, the reports
and the commands all read it and none of them needs another.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """A step's outcome on a host; a str, so results JSON and comparisons with text keep working."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"
    UNREACHABLE = "unreachable"

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.value]

    @property
    def label(self) -> str:
        return LABELS[self.value]


PASSED, FAILED, SKIPPED, ERROR, UNREACHABLE = Status.PASSED, Status.FAILED, Status.SKIPPED, Status.ERROR, Status.UNREACHABLE
NOT_RUN = "not-run"  # a cell of a view that no run has checked yet: not a Status a step can have

# Every status has a symbol, so tables read without colour too: the terminal, the check view and the dashboard.
SYMBOLS = {"passed": "✔", "failed": "✘", "skipped": "–", "error": "!", "unreachable": "?", NOT_RUN: "·"}
LABELS = {"passed": "passed", "failed": "failed", "skipped": "skipped (a required step did not pass)",
          "error": "labcheck error", "unreachable": "host unreachable", NOT_RUN: "not checked yet"}


def symbol(status: str) -> str:
    """The symbol of a status, '?' for one this version does not know."""
    return SYMBOLS.get(status, "?")


@dataclass
class CheckResult:
    """The outcome of one check, in words a student understands."""

    check: str  # the check's name, e.g. "dir_image"
    passed: bool
    summary: str  # what was checked: "dir:/root/fedora-skopeo is a complete image"
    expected: str | None = None
    actual: str | None = None
    reason: str = ""  # why it failed, for a student; empty when passed
    commands: list[str] = field(default_factory=list)  # what ran on the host
    output: str = ""  # a short excerpt of what the commands printed
    queries: list[str] = field(default_factory=list)  # what the engine asked registries, from the checker


@dataclass
class ActionOutcome:
    """One `do`/`undo` action as it ran: what it was (secrets redacted later), and how it went."""

    description: str  # e.g. "copy docker://… dir:…" or the shell command
    ok: bool
    output: str = ""
    error: str = ""


@dataclass
class StepResult:
    step_id: str
    title: str
    host: str
    status: str
    reason: str = ""
    hint: str = ""
    checks: list[CheckResult] = field(default_factory=list)
    actions: list[ActionOutcome] = field(default_factory=list)
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResults:
    """Results of one run: scenario, mode, and each host's steps in order, plus what the run knows
    besides (when, which file, which targets) so that reports need nothing else."""

    scenario_id: str = ""
    scenario_title: str = ""
    scenario_version: str = ""
    scenario_path: str = ""
    mode: str = ""
    profile: str = ""
    profile_why: dict[str, str] = field(default_factory=dict)  # host -> why its profile, when not asked for
    steps: list[tuple[str, str]] = field(default_factory=list)  # (id, title) in scenario order
    targets: dict[str, str] = field(default_factory=dict)  # host name → the URI it was reached by
    var_overrides: dict[str, str] = field(default_factory=dict)  # --var NAME=VALUE of the run
    hosts: dict[str, dict[str, StepResult]] = field(default_factory=dict)
    host_errors: dict[str, str] = field(default_factory=dict)  # unreachable hosts and why
    usage_errors: list[str] = field(default_factory=list)  # scenario/usage problems found while running
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    finished: datetime | None = None

    def add(self, result: StepResult) -> None:
        self.hosts.setdefault(result.host, {})[result.step_id] = result

    def result(self, host: str, step_id: str) -> StepResult | None:
        return self.hosts.get(host, {}).get(step_id)

    def all_results(self) -> list[StepResult]:
        return [r for steps in self.hosts.values() for r in steps.values()]

    def exit_code(self) -> int:
        """0 all passed; 1 a check failed on a host that was reached; 2 scenario or usage error;
        3 a host could not be reached; 4 labcheck itself failed.

        An unreachable host outranks failed checks: the run did not see the whole class, so its
        failures are not the whole story (the matrix and results JSON say who failed and why).
        """
        statuses = {r.status for r in self.all_results()}
        if self.usage_errors:
            return 2
        if ERROR in statuses:
            return 4
        if UNREACHABLE in statuses or self.host_errors:
            return 3
        if FAILED in statuses:
            return 1
        return 0
