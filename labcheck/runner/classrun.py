"""A run over many hosts: which hosts (URIs, inventories), and each host's steps, hosts in parallel."""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pytest

from labcheck import interrupts
from labcheck.checks.base import CheckContext
from labcheck.checks.engine_queries import EngineQueries
from labcheck.checks.host_queries import HostQueries
from labcheck.checks.platforms import platform_facts
from labcheck.checks.query_cache import QueryCache
from labcheck.engine.skopeo_driver import SkopeoDriver
from labcheck.errors import LabcheckError, UsageError
from labcheck.hosts.ansible_inventory import load_ansible_inventory
from labcheck.hosts.errors import HostUnreachable
from labcheck.hosts.facts import gather_facts
from labcheck.hosts.hostkeys import KnownHosts
from labcheck.hosts.inventory import Inventory, load_inventory
from labcheck.hosts.labworld import find_host_lab_world
from labcheck.hosts.parallel import Deadline, run_per_host
from labcheck.hosts.pool import ConnectionPool, PoolOptions
from labcheck.hosts.sshconfig import load_ssh_config
from labcheck.hosts.targets import Target, parse_hosts_option, unique_names
from labcheck.redact import REDACTOR
from labcheck.runner.drivers import make_driver
from labcheck.results import ERROR, FAILED, UNREACHABLE, StepResult
from labcheck.runner.steps import HostSession, credit_traceless, run_step
from labcheck.scenario.model import Scenario, Step, bind, parse_var_overrides
from labcheck.scenario.render import LabInfo, load_secrets_file

TARGETS_KEY = pytest.StashKey[list[Target]]()
POOL_KEY = pytest.StashKey[ConnectionPool]()
QUERIES_KEY = pytest.StashKey[QueryCache]()
INPUTS_KEY = pytest.StashKey[tuple[dict[str, str], "dict[str, str] | None"]]()



def select_targets(option: Any) -> list[Target]:
    """The run's hosts from the run options (a pytest config's or the command line's, runner/options.py):
    --hosts, --inventory and --ansible-inventory together, then --limit; local:// when none is given.
    UsageError (a one-line reason) for a file that cannot be read or a name that does not exist."""
    found: list[Target] = []
    groups: dict[str, list[str]] = {}
    if getattr(option, "hosts", None):
        found += parse_hosts_option(option.hosts)
    for path, loader in ((getattr(option, "labcheck_inventory", None), load_inventory),
                         (getattr(option, "ansible_inventory", None), load_ansible_inventory)):
        if path:
            inventory = loader(path)
            found += inventory.targets
            groups.update(inventory.groups)
    if not found:
        found = parse_hosts_option("local://")
    unique_names(found, "the hosts")
    if getattr(option, "labcheck_limit", None):
        found = Inventory(found, groups).select(option.labcheck_limit)
    return found


def targets(config: pytest.Config) -> list[Target]:
    """The run's hosts, once per run; how to reach them (ssh-config, known_hosts) is read here too,
    so that a problem with either is a collection error, not a crash in the middle of the run."""
    if TARGETS_KEY not in config.stash:
        found = select_targets(config.option)
        identity = getattr(config.option, "ssh_identity_file", None)  # testinfra's --ssh-identity-file
        if identity:
            found = [t if t.is_local or t.identity_file else t.with_(identity_file=identity) for t in found]
        if any(not t.is_local for t in found):
            pool(config)
        config.stash[TARGETS_KEY] = found
    return config.stash[TARGETS_KEY]


def pool_options(option: Any) -> PoolOptions:
    """How to reach hosts, from the run options (a pytest config's or the command line's)."""
    timeouts = {name: getattr(option, attribute) for name, attribute in
                (("connect_timeout", "labcheck_connect_timeout"), ("command_timeout", "labcheck_check_timeout"))
                if getattr(option, attribute, None) is not None}
    return PoolOptions(
        known_hosts=KnownHosts(getattr(option, "labcheck_known_hosts", None),
                               accept_new=bool(getattr(option, "labcheck_accept_new_host_keys", False))),
        ssh_config=load_ssh_config(getattr(option, "ssh_config", None)), **timeouts)


def pool(config: pytest.Config) -> ConnectionPool:
    """The run's connection pool: one given at configure time (connections opened early), else a new one."""
    if POOL_KEY not in config.stash:
        config.stash[POOL_KEY] = ConnectionPool(pool_options(config.option))
    return config.stash[POOL_KEY]


def run_inputs(config: pytest.Config) -> tuple[dict[str, str], dict[str, str] | None]:
    """--var overrides and the --secrets-file's secrets, read once per run for every host."""
    if INPUTS_KEY not in config.stash:
        secrets_file = config.getoption("labcheck_secrets_file")
        config.stash[INPUTS_KEY] = (parse_var_overrides(config.getoption("labcheck_var")),
                                    load_secrets_file(secrets_file) if secrets_file else None)
    return config.stash[INPUTS_KEY]


def query_cache(config: pytest.Config) -> QueryCache:
    """The run's registry answers, shared by every host."""
    if QUERIES_KEY not in config.stash:
        config.stash[QUERIES_KEY] = QueryCache()
    return config.stash[QUERIES_KEY]


class HostTarget:
    """One host of the run: connects (and binds the scenario with the host's facts and vars) once."""

    def __init__(self, target: Target, scenario: Scenario, config: pytest.Config) -> None:
        self.target = target
        self.name = target.name
        self.scenario = scenario
        self.config = config
        self.session: HostSession | None = None
        self.unreachable: str | None = None
        self.error: BaseException | None = None  # a usage error or crash while connecting
        self.results: dict[str, StepResult] = {}
        self.lock = threading.Lock()  # held while this host's steps run

    @property
    def spec(self) -> str:
        """The host as a URI, for reports (never a key or password)."""
        t = self.target
        if t.is_local:
            return "local://"
        return f"ssh://{t.user + '@' if t.user else ''}{t.hostname}{f':{t.port}' if t.port else ''}"

    def connect(self) -> HostSession:
        if self.session is not None:
            return self.session
        host = pool(self.config).host(self.target)
        facts = gather_facts(host, self.name)
        facts.update(platform_facts(facts.get("machine", "")))
        overrides, secrets = run_inputs(self.config)
        lab, own_world = self._lab(host)
        bound = bind(self.scenario, profile=self.config.getoption("labcheck_profile"), overrides=overrides,
                     host_facts=facts, host_vars=self.target.vars, secrets=secrets, lab=lab)
        env = dict(bound.env)
        env.update({k: str(bound.render(v, where=f"env {k} of {self.name}")) for k, v in self.target.env.items()})
        driver_name = self.config.getoption("labcheck_driver") or ("native" if self.target.is_local else "skopeo")
        driver = make_driver(driver_name, host, env)
        cache = query_cache(self.config)
        queries: EngineQueries | HostQueries
        if own_world:  # its registries listen where only the host reaches them: its skopeo asks
            queries = HostQueries(SkopeoDriver(host, env=env))
        else:  # asked on this machine: with the profile's env, not the host's paths
            queries = EngineQueries(env=bound.env, cache=cache)
        self.session = HostSession(self.name, CheckContext(host=host, engine=queries, env=env, facts=facts), bound, driver,
                                   cache=cache)
        return self.session

    def _lab(self, host: Any) -> tuple[LabInfo | None, bool]:
        """The lab world this host sees (None: this machine's), and whether it is the host's own.

        A remote host's own lab world (its state directory's env.sh) comes first; else, a host that is
        this very machine (a shared lab server) sees the lab world labcheck was given; else it has none."""
        if self.target.is_local or not any(p.get("lab_env") for p in self.scenario.profiles.values()):
            return None, False
        seen = find_host_lab_world(host, state_dir=self.target.env.get("LABCHECK_STATE_DIR"))
        if seen.env is None:
            return (None, False) if seen.same_machine else (LabInfo({}, REDACTOR, host=self.name), False)

        def read_file(path: str) -> str:
            result = host.run("cat -- %s", path)
            return result.stdout if result.rc == 0 else ""

        # The host reaches the registries of its own lab world (a VM's listen on its loopback): it asks them.
        return LabInfo(seen.env, REDACTOR, host=self.name, read_file=read_file), True

    def close(self) -> None:
        pool(self.config).close(self.target)


@dataclass
class HostWork:
    """The selected steps of one host, in scenario order."""

    host: HostTarget
    steps: list[Step]


class StopLimit:
    """pytest's -x/--maxfail for steps carried out ahead of its loop: once `maxfail` steps did not
    pass (failed, error, unreachable), no further step is started on any host."""

    def __init__(self, maxfail: int) -> None:
        self.maxfail = maxfail
        self.failures = 0
        self._lock = threading.Lock()

    def count(self, result: StepResult) -> None:
        if result.status in (FAILED, ERROR, UNREACHABLE):
            with self._lock:
                self.failures += 1

    @property
    def reached(self) -> bool:
        return 0 < self.maxfail <= self.failures


NO_LIMIT = StopLimit(0)


def unreachable_result(step: Step, host: HostTarget, reason: str) -> StepResult:
    # No hint: it cannot be rendered without the host's facts, and the student's next step is not the point.
    return StepResult(step.id, step.title, host.name, UNREACHABLE, reason=f"host unreachable: {reason}")


def run_host(work: HostWork, mode: str, *, host_timeout: float | None,
             record: Callable[[HostTarget, StepResult], None], stop: StopLimit = NO_LIMIT) -> None:
    """Connect, run each step in order, close; whatever fails here stays with this host.
    A step not started because the run reached its stop limit gets no result."""
    host = work.host
    if stop.reached:
        return
    with host.lock:
        deadline = Deadline(host_timeout, host.close)
        try:
            _run_steps(work, mode, deadline, host_timeout, record, stop)
        finally:
            deadline.cancel()
            host.close()


# Read-only modes run a host's steps side by side, each over its own channel of the host's one
# connection: at most this many, well under OpenSSH's default MaxSessions of 10.
STEPS_AT_ONCE = 4
READ_ONLY_MODES = ("verify", "check")


def _run_steps(work: HostWork, mode: str, deadline: Deadline, host_timeout: float | None,
               record: Callable[[HostTarget, StepResult], None], stop: StopLimit) -> None:
    host = work.host
    remaining = [s for s in work.steps if s.id not in host.results]
    session = None
    crash = ""
    if host.unreachable is None and host.error is None:
        try:
            session = host.connect()
        except HostUnreachable as exc:
            host.unreachable = _reason(exc, deadline, host_timeout)
        except UsageError as exc:
            host.error = exc  # each item re-raises it: pytest and exit code 2 see it
            return
        except LabcheckError as exc:  # e.g. no shell answers: the host is of no use
            host.unreachable = str(exc)
        except Exception as exc:  # a bug in labcheck: this host's steps are errors, never failed checks
            crash = f"labcheck crashed: {exc.__class__.__name__}: {exc}"
    step_mode = "verify" if mode == "check" else mode

    def finish(step: Step, outcome: Callable[[], StepResult | None]) -> None:
        """Record the step's result in scenario order; once the host is lost, every later step is
        unreachable. outcome() gives None for a step it did not start (the stop limit was reached)."""
        if host.unreachable is not None:
            result = unreachable_result(step, host, host.unreachable)
        elif crash or session is None:
            result = StepResult(step.id, step.title, host.name, ERROR, reason=crash or "not connected")
        else:
            try:
                ran = outcome()
            except HostUnreachable as exc:
                host.unreachable = _reason(exc, deadline, host_timeout)
                ran = unreachable_result(step, host, host.unreachable)
            if ran is None:  # not started: the stop limit was reached meanwhile
                return
            result = ran
        host.results[step.id] = result
        stop.count(result)
        record(host, result)

    def run(step: Step) -> StepResult:
        assert session is not None  # finish() asks for an outcome only on a host that answered
        return run_step(step, session, step_mode, host.results)

    if session is None or mode not in READ_ONLY_MODES or len(remaining) < 2:
        # run and reset change the host: one step after the other (requires, reverse undo order).
        for step in remaining:
            if stop.reached:
                break
            interrupts.check()  # a signal arrived: no step starts after it
            finish(step, functools.partial(run, step))
    else:
        _run_side_by_side(remaining, session, step_mode, host, finish, stop)
    if mode in READ_ONLY_MODES:
        credit_traceless(work.steps, host.results)


def _run_side_by_side(remaining: list[Step], session: HostSession, step_mode: str, host: HostTarget,
                      finish: Callable[[Step, Callable[[], StepResult | None]], None], stop: StopLimit) -> None:
    """verify and check change nothing, so no step depends on another's effects: the host's latency
    is paid once for several steps instead of once per step."""

    def unless_stopped(step: Step) -> StepResult | None:
        if stop.reached:
            return None
        interrupts.check()  # a signal arrived: no step starts after it
        return run_step(step, session, step_mode, {})

    with ThreadPoolExecutor(min(STEPS_AT_ONCE, len(remaining)), thread_name_prefix=f"labcheck-{host.name}") as steps:
        futures = [steps.submit(unless_stopped, step) for step in remaining]
        for step, future in zip(remaining, futures):
            if future.cancelled():
                continue
            finish(step, future.result)
            if host.unreachable is not None or stop.reached:
                for pending in futures:
                    pending.cancel()
            if host.unreachable is not None:
                host.close()  # steps still running on the lost host fail now instead of at their own timeout


def _reason(exc: HostUnreachable, deadline: Deadline, host_timeout: float | None) -> str:
    if deadline.expired.is_set():
        return f"not done within --host-timeout {host_timeout:g}s ({exc.reason})"
    return exc.reason


def run_all(works: Sequence[HostWork], mode: str, *, workers: int | None, host_timeout: float | None,
            record: Callable[[HostTarget, StepResult], None], host_done: Callable[[HostTarget], None],
            stop: StopLimit = NO_LIMIT) -> None:
    def one(work: HostWork) -> None:
        run_host(work, mode, host_timeout=host_timeout, record=record, stop=stop)
        host_done(work.host)

    run_per_host(list(works), one, workers=workers)


