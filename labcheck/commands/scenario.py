"""`labcheck run|verify|check|reset SCENARIO` and `labcheck lint FILE…`: a thin front over the pytest plugin."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from typing import TYPE_CHECKING, Iterator

import pluggy

from labcheck import interrupts
from labcheck.argtypes import positive_int
from labcheck.errors import UsageError
from labcheck.redact import REDACTOR, redacted_output
from labcheck.results import symbol
from labcheck.runner.options import add_to_command, pytest_arguments

if TYPE_CHECKING:
    from labcheck.hosts.pool import ConnectionPool
    from labcheck.hosts.targets import Target
    from labcheck.results import RunResults
    from labcheck.scenario.model import Scenario

PASSED, FAILED = "passed", "failed"

MODE_HELP = {
    "run": "course CI: do each step, then verify it (a failed step skips the steps that require it)",
    "verify": "grading: run every step's checks, change nothing on the host",
    "check": "a student: verify this machine and show what is done and a hint for the next step",
    "reset": "undo every step in reverse order, leaving the host as before the lab",
}
hookimpl = pluggy.HookimplMarker("pytest")  # pytest.hookimpl, without importing pytest for every command

EXIT_CODES = ("exit codes: 0 all passed; 1 a check failed; 2 scenario or usage error; "
              "3 a host could not be reached (outranks 1); 4 labcheck itself failed")


def register(subparsers) -> None:
    for mode, help_text in MODE_HELP.items():
        parser = subparsers.add_parser(mode, help=help_text, description=f"{help_text}. {EXIT_CODES}.")
        parser.add_argument("scenario", metavar="SCENARIO",
                            help="a scenario file, or the id of a shipped one (labcheck scenarios lists them)")
        add_to_command(parser, for_class=mode != "check")
        if mode == "check":
            parser.add_argument("--name", metavar="NAME",
                                help="this machine's name in the results (default: local), as the class dashboard "
                                     "shows it when the results of many machines are merged (contrib/ansible/)")
        parser.add_argument("--html", metavar="FILE", help="write a self-contained pytest-html report")
        parser.add_argument("--junitxml", metavar="FILE", help="write JUnit XML")
        parser.add_argument("-k", dest="keyword", metavar="EXPR", help="only steps matching EXPR (pytest -k)")
        parser.add_argument("-x", "--exitfirst", action="store_true",
                            help="stop at the first step that does not pass: no later step is started on any host")
        parser.add_argument("--maxfail", type=positive_int, metavar="N",
                            help="stop after N steps that did not pass: no later step is started on any host")
        parser.set_defaults(func=_run, mode=mode, labcheck_mode=mode, handle_signals=True)
    lint = subparsers.add_parser("lint", help="validate scenario files; report every problem as file:line:col",
                                 description="Validate scenario files against the format. Exit 0 when all are "
                                 "valid, 2 when any has a problem. With --page, also check that the scenario "
                                 "still encodes the course page: exit 1 on drift (each problem as page.md:LINE "
                                 "and scenario.yaml:LINE), 2 on a usage error, 0 when they agree.")
    lint.add_argument("files", nargs="+", metavar="FILE")
    lint.add_argument("--page", metavar="PAGE.md",
                      help="the course page the scenario encodes (one scenario FILE): report where they drifted apart")
    lint.set_defaults(func=_lint)
    schema = subparsers.add_parser("schema", help="print the JSON Schema of scenario files",
                                   description="Print the JSON Schema that defines the scenario format "
                                   "(every check's parameters included).")
    schema.set_defaults(func=_schema)


def _schema(args: argparse.Namespace) -> int:
    import json

    from labcheck.scenario.schema import scenario_schema

    print(json.dumps(scenario_schema(), indent=2))
    return 0


def _lint(args: argparse.Namespace) -> int:
    from labcheck.scenario.lint import lint_file

    if args.page and len(args.files) != 1:
        raise UsageError("lint --page takes one scenario file", hint="labcheck lint --page PAGE.md SCENARIO")
    problems = [p for name in args.files for p in lint_file(Path(name))]
    for problem in problems:
        print(problem)
    if problems:
        return 2
    if args.page:
        return _lint_page(Path(args.page), Path(args.files[0]))
    print(f"{len(args.files)} scenario file(s) valid", file=sys.stderr)
    return 0


def _lint_page(page_path: Path, scenario_path: Path) -> int:
    """Drift between a course page and its scenario: exit 1 when there is any."""
    from labcheck.page.drift import page_drift
    from labcheck.page.parse import parse_page
    from labcheck.scenario.model import load_scenario

    page = parse_page(page_path)
    for credential in page.credentials:
        REDACTOR.add(credential)  # public on the page, yet never printed
    drifts = page_drift(page, load_scenario(scenario_path))
    for drift in drifts:
        print(REDACTOR.redact(str(drift)))
    if drifts:
        print(f"{len(drifts)} drift(s) between {page_path} and {scenario_path}", file=sys.stderr)
        return 1
    print(f"{scenario_path} encodes {page_path}: {len(page.commands)} page command(s), no drift", file=sys.stderr)
    return 0


class _ResultsGrabber:
    """Keeps a handle on the plugin's results after pytest.main returns; hands the run the hosts
    the pre-flight read and the connection pool whose connections were opened while pytest started."""

    results: RunResults | None = None
    nothing_selected = False  # -k left no step
    interrupted = False  # Ctrl-C reached pytest

    def __init__(self, targets: list[Target], pool: ConnectionPool | None = None) -> None:
        self.targets = targets
        self.pool = pool

    def pytest_configure(self, config) -> None:
        from labcheck.report.pytest_reports import RESULTS_KEY
        from labcheck.runner import plugin
        from labcheck.runner.classrun import POOL_KEY, TARGETS_KEY

        plugin.activate(config)
        self.results = config.stash[RESULTS_KEY]
        config.stash[TARGETS_KEY] = self.targets
        if self.pool is not None:
            config.stash[POOL_KEY] = self.pool

    @hookimpl(trylast=True)  # after -k's deselection
    def pytest_collection_modifyitems(self, config, items) -> None:
        if not items:
            self.nothing_selected = True
            config.option.verbose = -2  # the command says so in one line, not pytest's "N deselected"

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        self.interrupted = True


def _pytest_args(args: argparse.Namespace, path: Path) -> list[str]:
    # The plugin is handed to pytest.main itself, so the run needs no plugin autoload; its entry
    # point copy is blocked (one module cannot be registered under two names).
    argv = [str(path), "-c", os.devnull, "--rootdir", str(path.parent), "-p", "no:cacheprovider",
            "-p", "no:labcheck", *pytest_arguments(args)]
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        argv += [f"--html={args.html}", "--self-contained-html"]
    if args.junitxml:
        argv.append(f"--junitxml={args.junitxml}")
    if args.keyword:
        argv += ["-k", args.keyword]
    if args.exitfirst:
        argv.append("-x")
    if args.maxfail:
        argv.append(f"--maxfail={args.maxfail}")
    # Not pytest's unraisable-exception plugin: it runs a gc.collect() at the end of the session
    # (over every host's SSH objects) to report warnings that this view does not show.
    argv += ["-p", "no:warnings", "-p", "no:unraisableexception"]
    if args.mode == "check":
        argv += ["-p", "no:terminal"]
    else:
        argv += ["--tb=short", "-q", "-rN"]
    return argv


@contextlib.contextmanager
def _without_pytest_addopts() -> Iterator[None]:
    """The command's options are the run's: PYTEST_ADDOPTS meant for a project's tests (say -n 4)
    does not reach it."""
    saved = os.environ.pop("PYTEST_ADDOPTS", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTEST_ADDOPTS"] = saved


def _check_options(args: argparse.Namespace, scenario: Scenario) -> list[Target]:
    """The options read before pytest starts, so that a mistake is one line and exit 2 rather than
    every step failing: the profile, --var, --secrets-file, the hosts (inventories, --limit), the
    --ssh-config, secrets that are not set and a missing lab world. The run gets the hosts from
    here; what needs a host (its facts) is checked by its run."""
    from labcheck.hosts.sshconfig import load_ssh_config
    from labcheck.runner.classrun import select_targets
    from labcheck.scenario.model import bind, choose_profile, parse_var_overrides
    from labcheck.scenario.render import HOST_INDEPENDENT_ERRORS, load_secrets_file

    choose_profile(scenario, args.labcheck_profile)
    overrides = parse_var_overrides(args.labcheck_var)
    secrets = load_secrets_file(args.labcheck_secrets_file) if args.labcheck_secrets_file else None
    found = select_targets(args)
    if getattr(args, "name", None):  # check: this machine, under the name the class knows it by
        found = [target.with_(name=args.name) for target in found]
    if any(not t.is_local for t in found):
        load_ssh_config(getattr(args, "ssh_config", None))
    for target in found:
        # Each host's variables with stand-in facts: a secret that is not set, or lab.* without a lab
        # world, fails the same on every host. Other problems may depend on the host: its run reports them.
        try:
            bind(scenario, profile=args.labcheck_profile, overrides=overrides, host_vars=target.vars, secrets=secrets,
                 host_facts={"user": "", "uid": "", "home": "", "xdg_runtime_dir": "", "host": target.name,
                             "machine": "", "arch": "", "variant": ""})
        except HOST_INDEPENDENT_ERRORS:
            if target.is_local:
                raise
            # A remote host may have a lab world of its own, or be this machine: its run finds out.
        except UsageError:
            pass
    return found


def _connection_pool(args: argparse.Namespace, found: list[Target]) -> ConnectionPool | None:
    """The run's SSH connections, from the command's options (pytest is not given testinfra's
    --ssh-config), opened in the background while pytest starts (about a tenth of a second per
    run); the run waits for and uses them, still one connection per host."""
    if all(t.is_local for t in found):
        return None
    from labcheck.hosts.pool import ConnectionPool
    from labcheck.runner.classrun import pool_options

    pool = ConnectionPool(pool_options(args))
    if not args.keyword:  # -k may leave a host with nothing to check: it is then never connected
        pool.connect_early(found)
    return pool


def _run(args: argparse.Namespace) -> int:
    import pytest

    from labcheck.scenario.catalog import resolve_scenario
    from labcheck.scenario.model import load_scenario

    path = resolve_scenario(args.scenario)
    scenario = load_scenario(path)  # lint first: problems are a usage error (exit 2), before anything runs
    found = _check_options(args, scenario)
    grabber = _ResultsGrabber(found, _connection_pool(args, found))
    from labcheck.runner import plugin

    with redacted_output(), _without_pytest_addopts():
        code = pytest.main(_pytest_args(args, path), plugins=[plugin, grabber])
    results = grabber.results
    signum = interrupts.received()
    if signum is not None:  # pytest stopped at the signal and wrote its reports: the run ends as interrupted
        raise interrupts.Interrupted(signum)
    if grabber.interrupted:
        raise KeyboardInterrupt  # the command's one line and exit 130
    if code == pytest.ExitCode.NO_TESTS_COLLECTED and grabber.nothing_selected and results is not None:
        steps = ", ".join(step_id for step_id, _ in results.steps)
        raise UsageError(f"no step matches -k {args.keyword!r}" if args.keyword else "no step selected",
                         hint=f"the steps: {steps}" if steps else None)
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERRUPTED) or results is None:
        return 2
    if code == pytest.ExitCode.INTERNAL_ERROR:
        return 4
    if args.mode == "check":
        print_check_view(results)
    else:
        print_summary(results)
    for message in dict.fromkeys(results.usage_errors):
        print(f"labcheck {args.mode}: {REDACTOR.redact(message)}", file=sys.stderr)
    return results.exit_code()


def print_check_view(results: RunResults) -> None:
    """A student's view: each step ✔/✘ with its title, the hint for the first failed step, k/n done."""
    for host, steps in results.hosts.items():
        print(f"{results.scenario_title} ({host})")
        if host in results.profile_why:
            print(f"  {results.profile_why[host]}")
        first_failed = None
        for step_id, title in results.steps:
            result = steps.get(step_id)
            if result is None:
                continue
            print(f"  {symbol(result.status)} {title}")
            if result.status != PASSED and first_failed is None:
                first_failed = result
        done = sum(1 for r in steps.values() if r.status == PASSED)
        if first_failed is not None:
            print(f"\nNext: {first_failed.title}")
            if first_failed.reason:
                print(f"  why: {REDACTOR.redact(first_failed.reason)}")
            if first_failed.hint:
                print(f"  hint: {REDACTOR.redact(first_failed.hint)}")
        print(f"\n{done}/{len(results.steps)} steps done")


def print_summary(results: RunResults) -> None:
    reasons = dict.fromkeys(results.profile_why.values())
    if len(results.hosts) > 1:
        from labcheck.runner.classview import matrix

        print(f"{results.mode} {results.scenario_id}: {len(results.hosts)} hosts")
        for reason in reasons:
            hosts = [h for h, r in results.profile_why.items() if r == reason]
            print(f"{reason}" + (f" ({', '.join(hosts)})" if len(reasons) > 1 else ""))
        print("\n".join(matrix(results)))
        return
    for host, steps in results.hosts.items():
        passed = sum(1 for r in steps.values() if r.status == PASSED)
        failed = [r for r in steps.values() if r.status == FAILED]
        print(f"{results.mode} {results.scenario_id} on {host}: {passed}/{len(results.steps)} steps passed"
              + (f", {len(failed)} failed" if failed else "")
              + (f" ({results.profile_why[host]})" if host in results.profile_why else ""))
