"""Helpers shared by labcheck's tests."""

from __future__ import annotations

import os
import subprocess

import pytest

from labcheck.labenv.world import LabWorld


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
