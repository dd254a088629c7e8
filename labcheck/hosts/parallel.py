"""Hosts checked concurrently, each host's work in order, each within a whole-host deadline."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

MAX_DEFAULT_WORKERS = 32


def default_workers(hosts: int) -> int:
    """One thread per host up to 32: the work is waiting on the network and the hosts, not this CPU."""
    return max(1, min(hosts, MAX_DEFAULT_WORKERS))


class Deadline:
    """A whole-host timeout: calls on_expire (e.g. closing the host's connection) when time is up."""

    def __init__(self, seconds: float | None, on_expire: Callable[[], None]) -> None:
        self.expired = threading.Event()
        self._timer: threading.Timer | None = None
        if seconds:
            def expire() -> None:
                self.expired.set()
                on_expire()

            self._timer = threading.Timer(seconds, expire)
            self._timer.daemon = True
            self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def run_per_host(hosts: Sequence[T], work: Callable[[T], None], *, workers: int | None = None) -> None:
    """work(host) for every host, `workers` at a time; an exception in one host's work is re-raised
    after all hosts are done (work should record per-host failures itself)."""
    if not hosts:
        return
    count = workers or default_workers(len(hosts))
    if count == 1:
        for host in hosts:
            work(host)
        return
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="labcheck-host") as executor:
        futures = [executor.submit(work, host) for host in hosts]
    for future in futures:
        future.result()

