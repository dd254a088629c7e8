"""A run over many hosts: which hosts (URIs, inventories), and each host's steps, hosts in parallel."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pytest

from labcheck import interrupts
from labcheck.argtypes import positive_int, positive_seconds
from labcheck.checks.base import CheckContext
from labcheck.checks.engine_queries import EngineQueries
from labcheck.checks.query_cache import QueryCache
from labcheck.errors import LabcheckError, UsageError
from labcheck.hosts.ansible_inventory import load_ansible_inventory
from labcheck.hosts.errors import HostUnreachable
from labcheck.hosts.facts import gather_facts
from labcheck.hosts.hostkeys import KnownHosts
from labcheck.hosts.inventory import Inventory, load_inventory
from labcheck.hosts.parallel import Deadline, run_per_host
from labcheck.hosts.pool import ConnectionPool, PoolOptions
from labcheck.hosts.sshconfig import load_ssh_config
from labcheck.hosts.targets import Target, parse_hosts_option, unique_names
from labcheck.runner.drivers import make_driver
from labcheck.runner.results import ERROR, UNREACHABLE, StepResult
from labcheck.runner.steps import HostSession, run_step
from labcheck.scenario.model import Scenario, Step, bind, parse_var_overrides
from labcheck.scenario.render import load_secrets_file

TARGETS_KEY = pytest.StashKey[list[Target]]()
POOL_KEY = pytest.StashKey[ConnectionPool]()
QUERIES_KEY = pytest.StashKey[QueryCache]()
INPUTS_KEY = pytest.StashKey[tuple[dict[str, str], "dict[str, str] | None"]]()


def add_options(group: Any) -> None:
    """The class options (--hosts, --ssh-config and --ansible-inventory are testinfra's own)."""
    group.addoption("--inventory", default=None, metavar="FILE", help="a class inventory (class.yaml): students to check")
    group.addoption("--limit", default=None, metavar="GROUPS",
                    help="only these inventory groups or host names (comma-separated)")
    group.addoption("--known-hosts", default=None, metavar="FILE", help="host keys to verify against "
                    "(default ~/.ssh/known_hosts)")
    group.addoption("--accept-new-host-keys", action="store_true", default=False,
                    help="trust a host's key on first use and record it in the known_hosts file "
                    "(a changed key is still refused)")
    group.addoption("--workers", type=positive_int, default=None, metavar="N",
                    help="hosts checked at once (default: one per host, up to 32)")
    group.addoption("--host-timeout", type=positive_seconds, default=300.0, metavar="SECONDS",
                    help="a host not done within this time is marked unreachable (default 300)")
    group.addoption("--check-timeout", type=positive_seconds, default=60.0, metavar="SECONDS",
                    help="a command on a host silent this long makes the host unreachable (default 60)")
    group.addoption("--connect-timeout", type=positive_seconds, default=10.0, metavar="SECONDS",
                    help="SSH connect, banner and authentication timeout (default 10)")


def select_targets(option: Any) -> list[Target]:
    """The run's hosts from options named as labcheck's (hosts, inventory, ansible_inventory, limit):
    --hosts, --inventory and --ansible-inventory together, then --limit; local:// when none is given.
    UsageError (a one-line reason) for a file that cannot be read or a name that does not exist."""
    found: list[Target] = []
    groups: dict[str, list[str]] = {}
    if getattr(option, "hosts", None):
        found += parse_hosts_option(option.hosts)
    for path, loader in ((getattr(option, "inventory", None), load_inventory),
                         (getattr(option, "ansible_inventory", None), load_ansible_inventory)):
        if path:
            inventory = loader(path)
            found += inventory.targets
            groups.update(inventory.groups)
    if not found:
        found = parse_hosts_option("local://")
    unique_names(found, "the hosts")
    if getattr(option, "limit", None):
        found = Inventory(found, groups).select(option.limit)
    return found


def targets(config: pytest.Config) -> list[Target]:
    """The run's hosts, once per run; how to reach them (ssh-config, known_hosts) is read here too,
    so that a problem with either is a collection error, not a crash in the middle of the run."""
    if TARGETS_KEY not in config.stash:
        found = select_targets(config.option)
        if any(not t.is_local for t in found):
            pool(config)
        config.stash[TARGETS_KEY] = found
    return config.stash[TARGETS_KEY]


def pool_options(option: Any) -> PoolOptions:
    """How to reach hosts, from options named as labcheck's (a pytest config's or the command line's)."""
    timeouts = {name: getattr(option, attribute) for name, attribute in
                (("connect_timeout", "connect_timeout"), ("command_timeout", "check_timeout"))
                if getattr(option, attribute, None) is not None}
    return PoolOptions(
        known_hosts=KnownHosts(getattr(option, "known_hosts", None),
                               accept_new=bool(getattr(option, "accept_new_host_keys", False))),
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
        overrides, secrets = run_inputs(self.config)
        bound = bind(self.scenario, profile=self.config.getoption("labcheck_profile"), overrides=overrides,
                     host_facts=facts, host_vars=self.target.vars, secrets=secrets)
        env = dict(bound.env)
        env.update({k: str(bound.render(v, where=f"env {k} of {self.name}")) for k, v in self.target.env.items()})
        driver_name = self.config.getoption("labcheck_driver") or ("native" if self.target.is_local else "skopeo")
        driver = make_driver(driver_name, host, env)
        # Registry questions are asked on this machine: with the profile's env, not the host's paths.
        cache = query_cache(self.config)
        queries = EngineQueries(env=bound.env, cache=cache)
        self.session = HostSession(self.name, CheckContext(host=host, engine=queries, env=env, facts=facts), bound, driver,
                                   cache=cache)
        return self.session

    def close(self) -> None:
        pool(self.config).close(self.target)


@dataclass
class HostWork:
    """The selected steps of one host, in scenario order."""

    host: HostTarget
    steps: list[Step]


def unreachable_result(step: Step, host: HostTarget, reason: str) -> StepResult:
    # No hint: it cannot be rendered without the host's facts, and the student's next step is not the point.
    return StepResult(step.id, step.title, host.name, UNREACHABLE, reason=f"host unreachable: {reason}")


def run_host(work: HostWork, mode: str, *, host_timeout: float | None,
             record: Callable[[HostTarget, StepResult], None]) -> None:
    """Connect, run each step in order, close; whatever fails here stays with this host."""
    host = work.host
    with host.lock:
        deadline = Deadline(host_timeout, host.close)
        try:
            _run_steps(work, mode, deadline, host_timeout, record)
        finally:
            deadline.cancel()
            host.close()


# Read-only modes run a host's steps side by side, each over its own channel of the host's one
# connection: at most this many, well under OpenSSH's default MaxSessions of 10.
STEPS_AT_ONCE = 4
READ_ONLY_MODES = ("verify", "check")


def _run_steps(work: HostWork, mode: str, deadline: Deadline, host_timeout: float | None,
               record: Callable[[HostTarget, StepResult], None]) -> None:
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

    def finish(step: Step, outcome: Callable[[], StepResult]) -> None:
        """Record the step's result in scenario order; once the host is lost, every later step is unreachable."""
        if host.unreachable is not None:
            result = unreachable_result(step, host, host.unreachable)
        elif crash or session is None:
            result = StepResult(step.id, step.title, host.name, ERROR, reason=crash or "not connected")
        else:
            try:
                result = outcome()
            except HostUnreachable as exc:
                host.unreachable = _reason(exc, deadline, host_timeout)
                result = unreachable_result(step, host, host.unreachable)
        host.results[step.id] = result
        record(host, result)

    if session is None or mode not in READ_ONLY_MODES or len(remaining) < 2:
        # run and reset change the host: one step after the other (requires, reverse undo order).
        for step in remaining:
            interrupts.check()  # a signal arrived: no step starts after it
            finish(step, lambda step=step: run_step(step, session, step_mode, host.results))
        return
    # verify and check change nothing, so no step depends on another's effects: the host's latency
    # is paid once for several steps instead of once per step.
    with ThreadPoolExecutor(min(STEPS_AT_ONCE, len(remaining)), thread_name_prefix=f"labcheck-{host.name}") as steps:
        futures = [steps.submit(_unless_interrupted, step, session, step_mode) for step in remaining]
        for step, future in zip(remaining, futures):
            finish(step, future.result)
            if host.unreachable is not None:
                for pending in futures:
                    pending.cancel()
                host.close()  # steps still running on the lost host fail now instead of at their own timeout


def _unless_interrupted(step: Step, session: HostSession, mode: str) -> StepResult:
    interrupts.check()
    return run_step(step, session, mode, {})


def _reason(exc: HostUnreachable, deadline: Deadline, host_timeout: float | None) -> str:
    if deadline.expired.is_set():
        return f"not done within --host-timeout {host_timeout:g}s ({exc.reason})"
    return exc.reason


def run_all(works: Sequence[HostWork], mode: str, *, workers: int | None, host_timeout: float | None,
            record: Callable[[HostTarget, StepResult], None], host_done: Callable[[HostTarget], None]) -> None:
    def one(work: HostWork) -> None:
        run_host(work, mode, host_timeout=host_timeout, record=record)
        host_done(work.host)

    run_per_host(list(works), one, workers=workers)


