"""The soak, small: copies through the fault proxy with random faults (tests/soak.py).

LABCHECK_SOAK_COPIES (default 30) and LABCHECK_SOAK_SEED (default: a fresh one, printed) size and
repeat it; bench/bench_soak.py runs a few hundred.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from labcheck.labenv.world import LabWorld
from tests.soak import DESTINATIONS, run_soak

pytestmark = [pytest.mark.lab, pytest.mark.soak, pytest.mark.timeout(300)]


def test_soak_every_copy_is_complete_or_a_clean_failure(lab_world: LabWorld, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    copies = int(os.environ.get("LABCHECK_SOAK_COPIES", "30"))
    seed = int(os.environ.get("LABCHECK_SOAK_SEED") or random.SystemRandom().randrange(1 << 32))
    report = run_soak(lab_world, tmp_path, copies=copies, seed=seed, time_budget=150)
    with capsys.disabled():
        print(f"\nsoak (LABCHECK_SOAK_SEED={seed} repeats it):\n{report.table()}")
    assert report.problems == []
    assert report.partial_or_corrupt == 0 and report.unclear_errors == 0 and report.credentials_leaked == 0
    assert report.completed + report.failed_cleanly == report.copies
    assert all(report.by_destination[kind] for kind in DESTINATIONS)
    assert sum(report.injected.values()) > 0
