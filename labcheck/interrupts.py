"""SIGTERM and SIGHUP handled as SIGINT is: an exception in the main thread (so every cleanup runs),
the processes labcheck started told too, nothing new started, and exit status 128+N.

`timeout`, systemd and CI cancellation send SIGTERM, a closed terminal SIGHUP; Python's default
for both is to die on the spot, leaving temporary files and half-made destinations behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# Set at the first signal: work running in other threads starts nothing new.
STOP = threading.Event()
_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """A handled signal arrived; a KeyboardInterrupt, so that everything treats it as Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def received() -> int | None:
    """The first handled signal that arrived, if any."""
    return _received[0] if _received else None


def check() -> None:
    """Raise Interrupted in a worker thread once a signal has arrived."""
    signum = received()
    if signum is not None:
        raise Interrupted(signum)


def exit_now(code: int) -> None:
    """End an interrupted process once its cleanup is done, without waiting for threads still blocked
    in a read or a command that will never return (the interpreter would join them at exit)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)


def _handler(signum: int, frame: object) -> None:
    _received.append(signum)
    STOP.set()
    _signal_descendants(signum)
    if len(_received) == 1:
        raise Interrupted(signum)
    # A second signal while cleaning up is passed on, not raised: the cleanup finishes.


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """While the block runs (in the main thread), SIGINT, SIGTERM and SIGHUP raise Interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _handler) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _signal_descendants(signum: int) -> None:
    """Pass the signal on to the processes this one started (a step's shell command, skopeo, podman),
    as a terminal's Ctrl-C reaches its whole process group."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                # pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
                ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    pending = list(children.get(os.getpid(), []))
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
