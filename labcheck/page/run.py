"""Run a page's commands verbatim, one after another, in the lab sandbox, and judge each against the page."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from labcheck.page.compare import Mismatch, compare_output
from labcheck.page.model import Page, PageCommand

# How a command enters the sandbox: argv in, (argv, environment) out (LabWorld.sandbox_command).
Enter = Callable[[list[str]], "tuple[list[str], dict[str, str]]"]

PASSED, FAILED, REPLACED = "passed", "failed", "replaced"
OUTPUT_LIMIT = 1 << 20  # what is kept of each stream: enough for any documented result


@dataclass(frozen=True)
class Completed:
    exit_status: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    duration: float


@dataclass(frozen=True)
class CommandOutcome:
    """One page command as it ran (or why it did not), and what disagrees with the page."""

    command: PageCommand
    status: str  # passed, failed or replaced
    completed: Completed | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    reason: str = ""  # why it failed, or what the lab world stands in for

    @property
    def duration(self) -> float:
        return self.completed.duration if self.completed else 0.0


def execute(enter: Enter, text: str, *, timeout: float, shell: str = "bash") -> Completed:
    """Run the command text with bash -c inside the sandbox; on timeout its whole process group is killed."""
    argv, env = enter([shell, "-c", text])
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        status: int | None = process.returncode
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        try:
            stdout, stderr = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # something left the group and holds the pipes
            stdout, stderr = b"", b""
        status = None
    return Completed(status, _text(stdout), _text(stderr), time.monotonic() - started)


def judge(command: PageCommand, completed: Completed, *, timeout: float, page: Page) -> CommandOutcome:
    if completed.exit_status is None:
        return CommandOutcome(command, FAILED, completed,
                              reason=f"{page.path}:{command.line}: `{command.text}` did not finish within "
                                     f"{timeout:g} s (killed); --timeout sets the limit per command")
    mismatches = compare_output(command, completed.stdout, completed.stderr)
    if completed.exit_status != 0:
        return CommandOutcome(command, FAILED, completed, mismatches,
                              reason=f"{page.path}:{command.line}: exit status {completed.exit_status}"
                                     + _stderr_tail(completed.stderr))
    if mismatches:
        first = mismatches[0]
        return CommandOutcome(command, FAILED, completed, mismatches,
                              reason=f"{page.path}:{first.line}: the output differs from the page "
                                     f"({first.what}: page {first.expected!r}, got {first.actual!r})"
                                     + (f" and {len(mismatches) - 1} more" if len(mismatches) > 1 else ""))
    return CommandOutcome(command, PASSED, completed)


def run_command(page: Page, command: PageCommand, *, enter: Enter, replaced: Mapping[str, str],
                timeout: float) -> CommandOutcome:
    """One command of the page: replaced by the lab world (not run), or run and judged."""
    if command.text in replaced:
        return CommandOutcome(command, REPLACED, reason=f"replaced by the lab world: {replaced[command.text]}")
    completed = execute(enter, command.text, timeout=timeout)
    return judge(command, completed, timeout=timeout, page=page)


def _stderr_tail(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return f": {last if len(last) <= 300 else '…' + last[-300:]}"  # the end holds the cause


def _text(data: bytes) -> str:
    return data[-OUTPUT_LIMIT:].decode(errors="replace")


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
