"""Helpers shared by labcheck's tests."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import sys
from typing import Any, Iterator

import pytest
from hypothesis import settings

from labcheck.labenv.world import LabWorld

# Property-based tests (tests/unit/test_properties.py): a modest number of examples by default; many
# more with `--hypothesis-profile=deep`. The deadline is what "nothing hangs" means for one example,
# generous for a loaded machine.
settings.register_profile("labcheck", max_examples=150, deadline=10_000, print_blob=True)
settings.register_profile("deep", max_examples=5_000, deadline=10_000, print_blob=True)
settings.load_profile("labcheck")


# --- the fast tier: `pytest -m "not lab"` is hermetic ------------------------------------------------
# `tools` (the real skopeo, podman, docker, sshd) and `command` (labcheck or pytest as a process of its
# own) are kinds of `lab`: an item carrying either, or using the lab_world fixture, is marked `lab` too.
# An item left in the fast tier that starts a process or reaches past the loopback fails, naming the
# marker it needs, so the tier cannot quietly stop being hermetic.
OUTSIDE_THE_FAST_TIER = ("tools", "command")
_hermetic_item: list[str] = []  # the node id of the running fast-tier item, if any
_escapes: list[str] = []


def _loopback(address: Any) -> bool:
    try:
        return ipaddress.ip_address(address[0]).is_loopback
    except (ValueError, TypeError, IndexError):
        return False  # a host name: resolving it is already leaving the machine


def _guard(event: str, args: tuple[Any, ...]) -> None:
    if not _hermetic_item:
        return
    if event == "subprocess.Popen":
        what = f"started {os.path.basename(str(args[0] or args[1][0]))}"
    elif event in ("os.posix_spawn", "os.exec", "os.system"):
        what = f"started a process ({event})"
    elif event == "socket.connect" and args[0].family in (2, 10) and not _loopback(args[1]):  # AF_INET, AF_INET6
        what = f"connected to {args[1]!r}"
    else:
        return
    _escapes.append(what)
    raise PermissionError(f"{_hermetic_item[0]} {what} in the fast tier: mark it tools, command or lab")


sys.addaudithook(_guard)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Before `-m` deselects: lab covers tools, command and every user of the lab world."""
    for item in items:
        if "lab_world" in getattr(item, "fixturenames", ()) or any(
                item.get_closest_marker(name) for name in OUTSIDE_THE_FAST_TIER):
            if item.get_closest_marker("lab") is None:
                item.add_marker(pytest.mark.lab)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _guarded(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _guarded(item):
        return (yield)


@contextlib.contextmanager
def _guarded(item: pytest.Item) -> Iterator[None]:
    """Setup and call of a fast-tier item, never teardown: the last item of a session also tears down
    the session's lab world and classroom, which start processes of their own."""
    if item.get_closest_marker("lab") is not None:
        yield
        return
    _hermetic_item.append(item.nodeid)
    _escapes.clear()
    try:
        yield
    finally:
        _hermetic_item.clear()
        if _escapes:
            escapes = "; ".join(dict.fromkeys(_escapes))
            _escapes.clear()
            pytest.fail(f"not hermetic: {escapes} — mark it tools, command or lab", pytrace=False)


def run_in_world(world: LabWorld, argv: list[str], *, check: bool = True, input: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a real tool (skopeo, podman, docker, labcheck) with the lab world's environment."""
    result = subprocess.run(argv, env={**os.environ, **world.env()}, capture_output=True, text=True,
                            input=input, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"{argv[0]} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


@pytest.fixture
def in_world(lab_world: LabWorld):
    """run(argv, ...) bound to the session's lab world."""

    def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
        return run_in_world(lab_world, argv, **kwargs)

    return run
