"""Helpers shared by labcheck's tests."""

from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import settings

from labcheck.labenv.world import LabWorld

# Property-based tests (tests/unit/test_properties.py): a modest number of examples by default; many
# more with `--hypothesis-profile=deep`. The deadline is what "nothing hangs" means for one example,
# generous for a loaded machine.
settings.register_profile("labcheck", max_examples=150, deadline=10_000, print_blob=True)
settings.register_profile("deep", max_examples=5_000, deadline=10_000, print_blob=True)
settings.load_profile("labcheck")


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
