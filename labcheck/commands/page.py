"""`labcheck page run PAGE.md`: the course page as a test — its own commands, verbatim, in the lab sandbox."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from labcheck.argtypes import positive_seconds
from labcheck.errors import UsageError
from labcheck.redact import REDACTOR, redacted_output

DEFAULT_TIMEOUT = 300.0


def register(subparsers) -> None:
    page = subparsers.add_parser(
        "page", help="the course page as a test: run its commands verbatim in the lab sandbox",
        description="Work with a course page (Markdown): its shell commands and the results it documents.",
    )
    actions = page.add_subparsers(dest="page_command", metavar="ACTION", required=True,
                                  parser_class=subparsers._parser_class)
    run = actions.add_parser(
        "run", help="run the page's shell commands in order in the lab sandbox and compare their output",
        description="Extract the page's shell commands (fenced sh blocks, the Input tabs of ::: tabs) and run "
        "them in page order, verbatim, inside the lab sandbox (labcheck lab shell), after the scenario that "
        "encodes the page has undone the lab (labcheck reset … --profile live). Each command passes when it "
        "exits 0 and its output agrees with what the page documents: for JSON, the stable keys (Name, Labels, "
        "Architecture, Os, Env, a container's State, Config.Labels/Env/Cmd); for text, the lines the tools "
        "print, with IDs, digests, sizes and dates never compared. Commands the scenario declares replaced "
        "by the lab world (installing Docker CE, starting it, exit) are listed, not run. "
        "Exit codes: 0 every command did what the page says; 1 one did not (its page line is named); "
        "2 a usage error (no such page, no shell command, no sandbox) or a command that did not finish within "
        "--timeout; 4 labcheck itself failed.",
    )
    run.add_argument("page", metavar="PAGE.md", help="the course page, e.g. course/05-skopeo-moving-sharing.md")
    run.add_argument("--scenario", metavar="FILE",
                     help="the scenario that encodes the page (default: the one in scenarios/ whose page: names it)")
    run.add_argument("--timeout", type=positive_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                     help=f"the most one command may take (default {DEFAULT_TIMEOUT:g})")
    run.add_argument("--no-reset", action="store_true", help="do not undo the lab before the page runs")
    run.add_argument("--state-dir", metavar="DIR", help="the lab world's state directory (as for labcheck lab)")
    run.add_argument("--json", metavar="FILE", help="write the results as JSON (docs/results-schema.json)")
    run.add_argument("--html", metavar="FILE", help="write a self-contained pytest-html report")
    run.add_argument("--junitxml", metavar="FILE", help="write JUnit XML")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import pytest

    from labcheck.labenv.world import LabWorld
    from labcheck.page.binding import find_binding
    from labcheck.page.parse import parse_page
    from labcheck.runner.page_plugin import PageRun

    path = Path(args.page)
    if not path.is_file():
        raise UsageError(f"no page {path}")
    page = parse_page(path)
    for credential in page.credentials:
        REDACTOR.add(credential)
    binding = find_binding(page, args.scenario)
    world = LabWorld(args.state_dir or os.environ.get("LABCHECK_STATE_DIR"))
    world.sandbox_command(["true"])  # no lab world, no sandbox, not root: one line and exit 2, before anything
    _say(f"{path}: {len(page.commands)} commands, in the lab sandbox {world.sandbox.name}"
         + (f"; {len(binding.replaced)} replaced by the lab world ({binding.scenario_path})" if binding else
            "; no scenario names this page, so every command runs"))
    if binding is not None and not args.no_reset:
        _reset(world, binding, page)

    width = shutil.get_terminal_size((100, 20)).columns
    line_width = max(len(str(c.line)) for c in page.commands)

    from labcheck.results import symbol

    def show(result) -> None:
        line = result.step_id.removeprefix("line-")
        text = REDACTOR.redact(result.title)
        room = max(20, width - line_width - 16)
        shown = text if len(text) <= room else text[: room - 1] + "…"
        print(f"  {symbol(result.status)} {path.name}:{line:<{line_width}}  {shown}  "
              f"{result.duration:.1f} s" if result.status != "skipped" else
              f"  {symbol('skipped')} {path.name}:{line:<{line_width}}  {shown}", flush=True)
        if result.status != "passed":
            print(f"      {REDACTOR.redact(result.reason)}", flush=True)

    plugin = PageRun(page, enter=world.sandbox_command, replaced=binding.replaced if binding else {},
                     timeout=args.timeout, json_path=args.json, on_result=show)
    argv = [str(path), "-c", os.devnull, "--rootdir", str(path.parent.resolve()), "-p", "no:cacheprovider",
            "-p", "no:terminal", "-p", "no:warnings", "-p", "no:unraisableexception", "--capture=no"]
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        argv += [f"--html={args.html}", "--self-contained-html"]
    if args.junitxml:
        argv.append(f"--junitxml={args.junitxml}")
    with redacted_output():
        code = pytest.main(argv, plugins=[plugin])
    if code == pytest.ExitCode.INTERNAL_ERROR:
        return 4
    if code == pytest.ExitCode.INTERRUPTED:
        return 130
    results = plugin.results.all_results()
    counts = {status: sum(1 for r in results if r.status == status) for status in ("passed", "failed", "skipped")}
    print(f"page run {path.name}: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} replaced by the lab world ({len(page.commands)} commands)")
    if plugin.timed_out:
        return 2  # a page command that hangs: the page, not the lab, needs a fix (or --timeout a larger limit)
    return 1 if counts["failed"] or len(results) != len(page.commands) else 0


def _reset(world, binding, page) -> None:
    """Undo the lab in the sandbox with the scenario's live profile, so the page starts as on a fresh VM."""
    argv = [sys.executable, "-m", "labcheck.cli", "reset", str(binding.scenario_path), "--profile", "live"]
    _say(f"undoing the lab first: labcheck reset {binding.scenario_path} --profile live")
    sandbox_argv, env = world.sandbox_command(argv)
    env.update(binding.secrets(page))
    result = subprocess.run(sandbox_argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        # The page's commands still run: what they then report is closer to the cause than this.
        failed = [line.strip() for line in result.stdout.splitlines() if "undo failed" in line]
        last = (failed or result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or ["(no output)"])[-1]
        _say(f"warning: not everything could be undone before the page runs ({last}); it runs on the lab as it is")


def _say(message: str) -> None:
    print(f"labcheck page: {REDACTOR.redact(message)}", file=sys.stderr, flush=True)
