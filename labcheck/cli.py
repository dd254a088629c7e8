"""The `labcheck` command: a thin front over the library's commands."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import traceback
from typing import NoReturn, Sequence

from labcheck import __version__, interrupts
from labcheck.errors import LabcheckError

# Subcommand modules; each defines register(subparsers) which sets `func` on its parser.
COMMAND_MODULES = [
    "labcheck.commands.lab",
    "labcheck.commands.inspect",
    "labcheck.commands.copy",
    "labcheck.commands.scenario",
    "labcheck.commands.catalog",
    "labcheck.commands.report",
    "labcheck.commands.page",
]
# Which module registers each command: a run imports only its own command's module (and what that
# imports), so `labcheck copy` does not pay for pytest's plugin machinery nor `--version` for requests.
COMMANDS: dict[str, str] = {
    "lab": "labcheck.commands.lab",
    "inspect": "labcheck.commands.inspect",
    "copy": "labcheck.commands.copy",
    **dict.fromkeys(("run", "verify", "check", "reset", "lint", "schema"), "labcheck.commands.scenario"),
    "scenarios": "labcheck.commands.catalog",
    "report": "labcheck.commands.report",
    "page": "labcheck.commands.page",
}
_GLOBAL_FLAGS = ("--debug",)


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`labcheck: error: …`) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def modules_for(argv: Sequence[str]) -> list[str]:
    """The command modules a parse of argv needs: the named command's alone; none for `--version`
    (or a bare `labcheck`); all of them for help, a mistyped command, or anything unforeseen."""
    words = [word for word in argv if word not in _GLOBAL_FLAGS]
    if words and words[0] in COMMANDS:
        return [COMMANDS[words[0]]]
    if not words or words == ["--version"]:
        return []
    return COMMAND_MODULES


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The CLI's parser with the commands of `modules` (all, unless told)."""
    parser = OneLineErrorParser(
        prog="labcheck",
        description="Validate hands-on container labs: bring up the offline lab world, "
        "inspect and copy images with skopeo's syntax, check lab steps.",
    )
    parser.add_argument("--version", action="version", version=f"labcheck {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug output")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=OneLineErrorParser, required=True
    )
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(subparsers)
    _everywhere(subparsers, "--debug", action="store_true", help="show tracebacks and debug output")
    return parser


def _everywhere(subparsers: argparse._SubParsersAction, *flags: str, **settings) -> None:
    """A global option also accepted after a subcommand (`labcheck lint f --debug`), at every level.
    SUPPRESS as the subcommands' default keeps a value given before the subcommand."""
    for sub in dict.fromkeys(subparsers.choices.values()):
        sub.add_argument(*flags, default=argparse.SUPPRESS, **settings)
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _everywhere(action, *flags, **settings)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(modules_for(argv))
    args = parser.parse_args(argv)
    # Commands that write destinations or run steps clean up on SIGTERM and SIGHUP as on Ctrl-C.
    guard = interrupts.handled() if getattr(args, "handle_signals", False) else contextlib.nullcontext()
    try:
        with guard:
            return int(args.func(args) or 0)
    except LabcheckError as exc:
        if getattr(args, "skopeo_errors", False) and exc.hint:
            # copy and inspect: skopeo's text alone on the first line (scripts grep it), the hint below
            _print_error(args, f"{exc.message}\nhint: {exc.hint}")
        else:
            _print_error(args, str(exc))
        return exc.exit_code
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, interrupts.Interrupted) else signal.SIGINT
        print(f"labcheck {args.command}: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        if interrupts.received() is not None:
            interrupts.exit_now(128 + signum)  # cleaned up: threads blocked in a read are not waited for
        return 128 + signum
    except Exception as exc:  # a bug in labcheck: one line (the traceback with --debug), never a secret
        _print_error(args, f"internal error: {exc.__class__.__name__}: {exc} "
                           f"(please report it; --debug shows the traceback)")
        return INTERNAL_ERROR


INTERNAL_ERROR = 4


def _print_error(args: argparse.Namespace, message: str) -> None:
    from labcheck.redact import REDACTOR

    if args.debug:
        print(REDACTOR.redact(traceback.format_exc()), file=sys.stderr, end="")
    print(f"labcheck {args.command}: {REDACTOR.redact(message)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
