"""labcheck's pytest plugin: the `lab_world` fixture (scenario collection comes with the runner)."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from labcheck.labenv.world import LabWorld


@pytest.fixture(scope="session")
def lab_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabWorld]:
    """A running offline lab world of the test session's own, torn down at the end.

    LABCHECK_TEST_STATE_DIR reuses (and keeps running) a lab world in that directory instead.
    """
    reuse = os.environ.get("LABCHECK_TEST_STATE_DIR")
    world = LabWorld(reuse or tmp_path_factory.mktemp("lab", numbered=True))
    world.up()
    yield world
    if not reuse:
        world.down()
