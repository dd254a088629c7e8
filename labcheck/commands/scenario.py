"""`labcheck run|verify|check|reset SCENARIO` and `labcheck lint FILE…`: a thin front over the pytest plugin."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from labcheck.argtypes import positive_int, positive_seconds
from labcheck.errors import UsageError
from labcheck.report.redact import REDACTOR, redacted_output

if TYPE_CHECKING:
    from labcheck.hosts.pool import ConnectionPool
    from labcheck.hosts.targets import Target
    from labcheck.runner.results import RunResults
    from labcheck.scenario.model import Scenario

PASSED, FAILED = "passed", "failed"

MODE_HELP = {
    "run": "course CI: do each step, then verify it (a failed step skips the steps that require it)",
    "verify": "grading: run every step's checks, change nothing on the host",
    "check": "a student: verify this machine and show what is done and a hint for the next step",
    "reset": "undo every step in reverse order, leaving the host as before the lab",
}
EXIT_CODES = ("exit codes: 0 all passed; 1 a check failed; 2 scenario or usage error; "
              "3 a host could not be reached (outranks 1); 4 labcheck itself failed")


def register(subparsers) -> None:
    for mode, help_text in MODE_HELP.items():
        parser = subparsers.add_parser(mode, help=help_text, description=f"{help_text}. {EXIT_CODES}.")
        parser.add_argument("scenario", metavar="SCENARIO", help="a scenario file (scenarios/*.yaml)")
        if mode != "check":
            parser.add_argument("--hosts", default=None,
                                help="comma-separated host URIs: local://, paramiko://user@host:port"
                                "?ssh_identity_file=KEY, ssh://… (default: local://)")
            add_class_arguments(parser)
        parser.add_argument("--profile", help="the scenario profile (default: the scenario's default_profile)")
        parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                            help="override a scenario variable (repeatable)")
        parser.add_argument("--secrets-file", metavar="FILE", help="KEY=VALUE lines that secret('KEY') reads")
        parser.add_argument("--driver", choices=("native", "skopeo"),
                            help="who carries out copy/inspect: native (labcheck's engine, on this machine) or "
                            "skopeo (the real skopeo on the host); default: native locally, skopeo remotely")
        parser.add_argument("--html", metavar="FILE", help="write a self-contained pytest-html report")
        parser.add_argument("--junitxml", metavar="FILE", help="write JUnit XML")
        parser.add_argument("--json", metavar="FILE", help="write the results as JSON (docs/results-schema.json), "
                            "the input of `labcheck report`")
        parser.add_argument("-k", dest="keyword", metavar="EXPR", help="only steps matching EXPR (pytest -k)")
        parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failed step")
        parser.set_defaults(func=_run, mode=mode)
    lint = subparsers.add_parser("lint", help="validate scenario files; report every problem as file:line:col",
                                 description="Validate scenario files against the format. Exit 0 when all are "
                                 "valid, 2 when any has a problem.")
    lint.add_argument("files", nargs="+", metavar="FILE")
    lint.set_defaults(func=_lint)
    schema = subparsers.add_parser("schema", help="print the JSON Schema of scenario files",
                                   description="Print the JSON Schema that defines the scenario format "
                                   "(every check's parameters included).")
    schema.set_defaults(func=_schema)


def add_class_arguments(parser: argparse.ArgumentParser) -> None:
    """Hosts of a class: inventories, SSH settings, parallelism and timeouts."""
    group = parser.add_argument_group("a class of hosts")
    group.add_argument("--inventory", metavar="FILE", help="a class inventory (docs/class.md): students to check")
    group.add_argument("--ansible-inventory", metavar="FILE", help="an Ansible inventory (INI or YAML)")
    group.add_argument("--limit", metavar="GROUPS", help="only these inventory groups or host names (comma-separated)")
    group.add_argument("--ssh-config", metavar="FILE", help="an OpenSSH client config (default ~/.ssh/config)")
    group.add_argument("--known-hosts", metavar="FILE", help="host keys to verify (default ~/.ssh/known_hosts)")
    group.add_argument("--accept-new-host-keys", action="store_true",
                       help="trust unknown host keys on first use and record them (a changed key is still refused)")
    group.add_argument("--workers", type=positive_int, metavar="N", help="hosts checked at once (default: all, up to 32)")
    group.add_argument("--host-timeout", type=positive_seconds, metavar="SECONDS",
                       help="a host not done in this time is unreachable (default 300)")
    group.add_argument("--check-timeout", type=positive_seconds, metavar="SECONDS",
                       help="a command silent this long makes its host unreachable (default 60)")


def class_pytest_args(args: argparse.Namespace) -> list[str]:
    argv = []
    for name in ("hosts", "inventory", "ansible_inventory", "limit", "ssh_config", "known_hosts", "workers",
                 "host_timeout", "check_timeout"):
        value = getattr(args, name, None)
        if value is not None:
            argv.append(f"--{name.replace('_', '-')}={value}")
    if getattr(args, "accept_new_host_keys", False):
        argv.append("--accept-new-host-keys")
    return argv


def _schema(args: argparse.Namespace) -> int:
    import json

    from labcheck.scenario.schema import scenario_schema

    print(json.dumps(scenario_schema(), indent=2))
    return 0


def _lint(args: argparse.Namespace) -> int:
    from labcheck.scenario.lint import lint_file

    problems = [p for name in args.files for p in lint_file(Path(name))]
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{len(args.files)} scenario file(s) valid", file=sys.stderr)
    return 2 if problems else 0


class _ResultsGrabber:
    """Keeps a handle on the plugin's results after pytest.main returns; hands the run the hosts
    the pre-flight read and the connection pool whose connections were opened while pytest started."""

    results: RunResults | None = None

    def __init__(self, targets: list[Target], pool: ConnectionPool | None = None) -> None:
        self.targets = targets
        self.pool = pool

    def pytest_configure(self, config) -> None:
        from labcheck.runner.classrun import POOL_KEY, TARGETS_KEY
        from labcheck.runner.plugin import RESULTS_KEY

        self.results = config.stash[RESULTS_KEY]
        config.stash[TARGETS_KEY] = self.targets
        if self.pool is not None:
            config.stash[POOL_KEY] = self.pool


def _pytest_args(args: argparse.Namespace, path: Path) -> list[str]:
    argv = [str(path), "-c", os.devnull, "--rootdir", str(path.parent), "-p", "no:cacheprovider",
            f"--labcheck-mode={args.mode}"]
    argv += class_pytest_args(args)
    if args.profile:
        argv.append(f"--labcheck-profile={args.profile}")
    argv += [f"--labcheck-var={v}" for v in args.var]
    if args.driver:
        argv.append(f"--labcheck-driver={args.driver}")
    if args.secrets_file:
        argv.append(f"--labcheck-secrets-file={args.secrets_file}")
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        argv += [f"--html={args.html}", "--self-contained-html"]
    if args.junitxml:
        argv.append(f"--junitxml={args.junitxml}")
    if args.json:
        argv.append(f"--labcheck-json={args.json}")
    if args.keyword:
        argv += ["-k", args.keyword]
    if args.exitfirst:
        argv.append("-x")
    # Not pytest's unraisable-exception plugin: it runs a gc.collect() at the end of the session
    # (over every host's SSH objects) to report warnings that this view does not show.
    argv += ["-p", "no:warnings", "-p", "no:unraisableexception"]
    if args.mode == "check":
        argv += ["-p", "no:terminal"]
    else:
        argv += ["--tb=short", "-q", "-rN"]
    return argv


def _check_options(args: argparse.Namespace, scenario: Scenario) -> list[Target]:
    """The options read before pytest starts, so that a mistake is one line and exit 2 rather than
    every step failing: the profile, --var, --secrets-file, the hosts (inventories, --limit), the
    --ssh-config, secrets that are not set and a missing lab world. The run gets the hosts from
    here; what needs a host (its facts) is checked by its run."""
    from labcheck.hosts.sshconfig import load_ssh_config
    from labcheck.runner.classrun import select_targets
    from labcheck.scenario.model import bind, choose_profile, parse_var_overrides
    from labcheck.scenario.render import HOST_INDEPENDENT_ERRORS, load_secrets_file

    choose_profile(scenario, args.profile)
    overrides = parse_var_overrides(args.var)
    secrets = load_secrets_file(args.secrets_file) if args.secrets_file else None
    found = select_targets(args)
    if any(not t.is_local for t in found):
        load_ssh_config(getattr(args, "ssh_config", None))
    for target in found:
        # Each host's variables with stand-in facts: a secret that is not set, or lab.* without a lab
        # world, fails the same on every host. Other problems may depend on the host: its run reports them.
        try:
            bind(scenario, profile=args.profile, overrides=overrides, host_vars=target.vars, secrets=secrets,
                 host_facts={"user": "", "uid": "", "home": "", "xdg_runtime_dir": "", "host": target.name,
                             "machine": ""})
        except HOST_INDEPENDENT_ERRORS:
            raise
        except UsageError:
            pass
    return found


def _connect_early(args: argparse.Namespace, found: list[Target]) -> ConnectionPool | None:
    """The run's SSH connections, opened in the background while pytest starts (about a tenth of a
    second per run); the run waits for and uses them, still one connection per host."""
    if all(t.is_local for t in found) or args.keyword:
        return None  # -k may leave a host with nothing to check: it is then never connected
    from labcheck.hosts.pool import ConnectionPool
    from labcheck.runner.classrun import pool_options

    pool = ConnectionPool(pool_options(args))
    pool.connect_early(found)
    return pool


def _run(args: argparse.Namespace) -> int:
    import pytest

    from labcheck.scenario.model import load_scenario

    path = Path(args.scenario)
    if not path.is_file():
        raise UsageError(f"no scenario file {path}")
    scenario = load_scenario(path)  # lint first: problems are a usage error (exit 2), before anything runs
    found = _check_options(args, scenario)
    grabber = _ResultsGrabber(found, _connect_early(args, found))
    with redacted_output():
        code = pytest.main(_pytest_args(args, path), plugins=[grabber])
    results = grabber.results
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


def _mark(status: str) -> str:
    return {"passed": "✔", "failed": "✘", "skipped": "–", "unreachable": "?", "error": "!"}.get(status, "?")


def print_check_view(results: RunResults) -> None:
    """A student's view: each step ✔/✘ with its title, the hint for the first failed step, k/n done."""
    for host, steps in results.hosts.items():
        print(f"{results.scenario_title} ({host})")
        first_failed = None
        for step_id, title in results.steps:
            result = steps.get(step_id)
            if result is None:
                continue
            print(f"  {_mark(result.status)} {title}")
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
    if len(results.hosts) > 1:
        from labcheck.runner.classview import matrix

        print(f"{results.mode} {results.scenario_id}: {len(results.hosts)} hosts")
        print("\n".join(matrix(results)))
        return
    for host, steps in results.hosts.items():
        passed = sum(1 for r in steps.values() if r.status == PASSED)
        failed = [r for r in steps.values() if r.status == FAILED]
        print(f"{results.mode} {results.scenario_id} on {host}: {passed}/{len(results.steps)} steps passed"
              + (f", {len(failed)} failed" if failed else ""))
