"""The instructor's terminal view: a hosts × steps table, redrawn live on a terminal as hosts finish."""

from __future__ import annotations

import threading
from typing import Callable

from labcheck.redact import REDACTOR
from labcheck.results import PASSED, UNREACHABLE, NOT_RUN, RunResults, symbol



def host_cell(results: RunResults, host: str) -> str:
    steps = results.hosts.get(host, {})
    passed = sum(1 for r in steps.values() if r.status == PASSED)
    return f"{passed}/{len(results.steps)}"


def matrix(results: RunResults, hosts: list[str] | None = None, *, reason_width: int = 100) -> list[str]:
    """The table's lines: one row per host (an unreachable host shows why), a totals row, the step legend."""
    hosts = list(results.hosts) if hosts is None else hosts
    numbers = [str(i) for i in range(1, len(results.steps) + 1)]
    name_width = max([len("passed"), len("host"), *(len(h) for h in hosts)])
    lines = [f"{'host':<{name_width}}  {'  '.join(numbers)}  passed"]
    totals = [0] * len(results.steps)
    reachable = 0
    for host in hosts:
        steps = results.hosts.get(host, {})
        down = [r for r in steps.values() if r.status == UNREACHABLE]
        if down and len(down) == len(steps):
            reason = REDACTOR.redact(down[0].reason.removeprefix("host unreachable: "))
            if len(reason) > reason_width:
                reason = reason[: reason_width - 1] + "…"
            lines.append(f"{host:<{name_width}}  unreachable: {reason}")
            continue
        reachable += 1
        cells = []
        for index, (step_id, _title) in enumerate(results.steps):
            result = steps.get(step_id)
            cells.append(symbol(result.status if result else NOT_RUN))
            if result is not None and result.status == PASSED:
                totals[index] += 1
        width = [len(n) for n in numbers]
        row = "  ".join(f"{c:<{w}}" for c, w in zip(cells, width))
        lines.append(f"{host:<{name_width}}  {row}  {host_cell(results, host)}")
    total_cells = "  ".join(f"{t}" for t in totals)
    lines.append(f"{'passed':<{name_width}}  {total_cells}  (of {reachable} reachable, {len(hosts) - reachable} "
                 f"unreachable)")
    lines += [f"  {n}  {step_id}: {title}" for n, (step_id, title) in zip(numbers, results.steps)]
    return lines


def fit(line: str, width: int) -> str:
    """The line cut to width-1 columns (the last column would wrap on some terminals), marked with …"""
    limit = max(width - 1, 8)
    return line if len(line) <= limit else line[: limit - 1] + "…"


class LiveView:
    """Redraws the table in place on a terminal; elsewhere one plain line per host as it finishes."""

    def __init__(self, results: RunResults, hosts: list[str], write: Callable[[str], None], *, tty: bool,
                 width: Callable[[], int] = lambda: 80) -> None:
        self.results = results
        self.width = width  # the terminal's columns, asked at every redraw (it may be resized)
        self.hosts = hosts
        self.write = write
        self.tty = tty
        self.done = 0
        self._drawn = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        if self.tty:
            with self._lock:
                self._draw()

    def host_done(self, host: str) -> None:
        with self._lock:
            self.done += 1
            if self.tty:
                self._draw()
                return
            steps = self.results.hosts.get(host, {})
            down = [r for r in steps.values() if r.status == UNREACHABLE]
            if down and len(down) == len(steps):
                what = f"unreachable: {REDACTOR.redact(down[0].reason.removeprefix('host unreachable: '))}"
            else:
                what = f"{host_cell(self.results, host)} steps passed"
            self.write(f"[{self.done}/{len(self.hosts)}] {host}: {what}\n")

    def finish(self) -> None:
        """Erase the live table: the final one is printed with the summary."""
        with self._lock:
            if self.tty and self._drawn:
                self.write(f"\x1b[{self._drawn}F\x1b[J")
                self._drawn = 0

    def _draw(self) -> None:
        # Every line fits the terminal: a wrapped line would make the redraw climb too few lines.
        lines = [fit(line, self.width()) for line in
                 [f"{self.done}/{len(self.hosts)} hosts done", *matrix(self.results, self.hosts)]]
        erase = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
        self.write(erase + "\n".join(lines) + "\n")
        self._drawn = len(lines)
