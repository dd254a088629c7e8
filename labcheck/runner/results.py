"""What a run produced, per host and step: the one structure every report is rendered from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from labcheck.checks.base import CheckResult

PASSED, FAILED, SKIPPED, ERROR, UNREACHABLE = "passed", "failed", "skipped", "error", "unreachable"


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
    """Results of one run: scenario, mode, and each host's steps in order."""

    scenario_id: str = ""
    scenario_title: str = ""
    mode: str = ""
    profile: str = ""
    profile_why: dict[str, str] = field(default_factory=dict)  # host -> why its profile, when not asked for
    steps: list[tuple[str, str]] = field(default_factory=list)  # (id, title) in scenario order
    hosts: dict[str, dict[str, StepResult]] = field(default_factory=dict)
    host_errors: dict[str, str] = field(default_factory=dict)  # unreachable hosts and why
    usage_errors: list[str] = field(default_factory=list)  # scenario/usage problems found while running

    def add(self, result: StepResult) -> None:
        self.hosts.setdefault(result.host, {})[result.step_id] = result

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
