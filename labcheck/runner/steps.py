"""Running one step on one host in a mode: do, verify (with retries), undo."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from labcheck.checks.base import CHECKS, CheckContext, CheckResult
from labcheck.checks.query_cache import QueryCache
from labcheck.errors import LabcheckError, ScenarioValueError
from labcheck.hosts.errors import HostUnreachable
from labcheck.runner.drivers import StepDriver
from labcheck.results import ERROR, FAILED, PASSED, SKIPPED, ActionOutcome, StepResult
from labcheck.scenario.model import BoundScenario, Step
from labcheck.scenario.render import SecretNotSet



@dataclass
class HostSession:
    """Everything bound to one host for a run."""

    name: str
    context: CheckContext
    bound: BoundScenario
    driver: StepDriver
    cache: QueryCache | None = None  # registry answers shared with the run's other hosts
    # Steps whose scenario values failed once rendered here (exit 2, not a failed check), by step id.
    scenario_errors: dict[str, ScenarioValueError] = field(default_factory=dict)


def describe_action(action: dict[str, Any]) -> str:
    """A one-line, skopeo-like description of an action (rendered; secrets redacted later)."""
    kind, params = next(iter(action.items()))
    if kind == "run":
        return str(params)
    if kind == "copy":
        extra = " --all" if params.get("all") else ""
        extra += " --src-creds ***" if params.get("src_creds") else ""
        extra += " --dest-creds ***" if params.get("dest_creds") else ""
        return f"copy{extra} {params['src']} {params['dst']}"
    if kind == "inspect":
        return f"inspect{' --creds ***' if params.get('creds') else ''} {params['ref']}"
    return f"{kind}{' --creds ***' if params.get('creds') else ''} {params.get('ref', '')}"


def perform(action: dict[str, Any], session: HostSession) -> ActionOutcome:
    """Carry out one rendered action; a LabcheckError is a failed action, not a crash."""
    kind, params = next(iter(action.items()))
    description = describe_action(action)
    try:
        return _perform(kind, params, description, session)
    finally:
        if kind != "inspect" and session.cache is not None:
            session.cache.invalidate()  # a copy, delete or command may have written to a registry


def _perform(kind: str, params: Any, description: str, session: HostSession) -> ActionOutcome:
    try:
        if kind == "run":
            result = session.context.run(params)
            output = (result.stdout + result.stderr).strip()
            if result.rc != 0:
                return ActionOutcome(description, False, output[-2000:], f"exited with status {result.rc}")
            return ActionOutcome(description, True, output[-2000:])
        if kind == "copy":
            digest = session.driver.copy(params["src"], params["dst"], src_creds=params.get("src_creds"),
                                         dest_creds=params.get("dest_creds"), all_images=bool(params.get("all")),
                                         src_tls_verify=params.get("src_tls_verify"),
                                         dest_tls_verify=params.get("dest_tls_verify"))
            return ActionOutcome(description, True, f"wrote manifest {digest}")
        if kind == "inspect":
            info = session.driver.inspect(params["ref"], creds=params.get("creds"), tls_verify=params.get("tls_verify"))
            return ActionOutcome(description, True, f"Digest {info.get('Digest')}, "
                                                    f"{info.get('Os')}/{info.get('Architecture')}")
        if kind == "delete":
            session.driver.delete(params["ref"], creds=params.get("creds"))
            return ActionOutcome(description, True)
    except LabcheckError as exc:
        return ActionOutcome(description, False, "", str(exc))
    raise ValueError(f"unknown action {kind}")


def verify(step: Step, session: HostSession, *, retries: int | None = None) -> list[CheckResult]:
    """Run the step's checks; retry the whole list (state that settles) until all pass or time is up."""
    attempts = (step.retries if retries is None else retries) + 1
    deadline = time.monotonic() + step.timeout if step.timeout else None
    results: list[CheckResult] = []
    for attempt in range(attempts):
        if attempt and session.cache is not None:
            session.cache.invalidate()  # a retry waits for state to settle: registries' included
        results = [run_check(check, step, session) for check in step.verify]
        if all(r.passed for r in results):
            break
        if attempt + 1 < attempts and (deadline is None or time.monotonic() + step.retry_delay < deadline):
            time.sleep(step.retry_delay)
        else:
            break
    return results


def run_check(check: dict[str, Any], step: Step, session: HostSession) -> CheckResult:
    name, params = next(iter(check.items()))
    rendered = session.bound.render(params or {}, where=f"step '{step.id}' check {name}")
    try:
        return CHECKS[name].function(session.context, **rendered)
    except ScenarioValueError as exc:
        raise ScenarioValueError(f"step '{step.id}' check {name}: {exc.message}", hint=exc.hint) from None
    except LabcheckError as exc:
        return CheckResult(name, False, f"{name} check", reason=str(exc))


def run_step(step: Step, session: HostSession, mode: str, earlier: dict[str, StepResult]) -> StepResult:
    """One step on one host. Raises HostUnreachable when the host stops answering."""
    started = time.monotonic()
    result = StepResult(step.id, step.title, session.name, PASSED)
    try:
        result.hint = session.bound.render(step.hint, where=f"step '{step.id}' hint") if step.hint else ""
        if mode == "reset":
            for action in step.undo:
                result.actions.append(perform(session.bound.render(action, where=f"step '{step.id}' undo"), session))
            failed = [a for a in result.actions if not a.ok]
            if failed:
                result.status, result.reason = FAILED, f"undo failed: {failed[0].error}"
            return result
        if mode == "run":
            missing = [r for r in step.requires if earlier.get(r) is None or earlier[r].status != PASSED]
            if missing:
                result.status = SKIPPED
                result.reason = f"requires {', '.join(missing)}, which did not pass"
                return result
            for action in step.do:
                outcome = perform(session.bound.render(action, where=f"step '{step.id}' do"), session)
                result.actions.append(outcome)
                if not outcome.ok:
                    result.status, result.reason = FAILED, f"{outcome.description}: {outcome.error}"
                    return result
        result.checks = verify(step, session)
        failed_checks = [c for c in result.checks if not c.passed]
        if failed_checks:
            result.status = FAILED
            result.reason = failed_checks[0].reason or failed_checks[0].summary
        return result
    except HostUnreachable:
        raise
    except SecretNotSet as exc:  # the step uses a secret this run was not given: it cannot be checked
        result.status, result.reason, result.hint = SKIPPED, f"needs a secret: {exc.message}", exc.hint or ""
        result.checks, result.actions = [], []
        return result
    except ScenarioValueError as exc:  # the scenario's mistake, not the host's: the run exits 2
        session.scenario_errors[step.id] = exc
        result.status, result.reason = ERROR, str(exc)
        return result
    except LabcheckError as exc:
        result.status, result.reason = FAILED, str(exc)
        return result
    except Exception as exc:  # a bug in labcheck: never reported as a failed check
        result.status, result.reason = ERROR, f"labcheck crashed: {exc.__class__.__name__}: {exc}"
        return result
    finally:
        result.duration = time.monotonic() - started


def credit_traceless(steps: list[Step], results: dict[str, StepResult]) -> None:
    """A step that leaves no trace passed its checks, yet only a later step done shows the student did it.

    Applied to verify and check: with no later step of the run passed, it is not done yet (its hint
    says what to do). A run that checks no later step (-k, or skipped ones) leaves it as its checks found it.
    """
    for index, step in enumerate(steps):
        result = results.get(step.id)
        if not step.leaves_no_trace or result is None or result.status != PASSED:
            continue
        later = [results[s.id] for s in steps[index + 1:] if s.id in results and results[s.id].status != SKIPPED]
        if later and not any(r.status == PASSED for r in later):
            result.status = FAILED
            result.reason = "not done yet: it leaves nothing on the host to check, and no later step is done"
