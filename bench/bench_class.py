"""`labcheck verify` of the whole Skopeo scenario over SSH for 1, 10 and 30 students (real users, one sshd on
loopback, every student finished): wall time, the 30-to-1 ratio (goal ≤ 2.0) and the time per host.

    .venv/bin/python bench/bench_class.py [--state-dir DIR]   # as root; creates and removes 30 users
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labcheck.labenv.world import LabWorld  # noqa: E402
from tests.classroom import Classroom  # noqa: E402

SIZES = (1, 10, 30)
REPEATS = 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", help="reuse (and keep) the lab world in this directory")
    args = parser.parse_args()
    world = LabWorld(args.state_dir or tempfile.mkdtemp(prefix="labcheck-bench-lab-"))
    world.up()
    room = Classroom(world, tag="lcb")
    try:
        students = room.add_students([f"{i:02d}" for i in range(max(SIZES))])
        room.start_sshd()
        groups = {f"first{n}": [s.name for s in students[:n]] for n in SIZES}
        inventory = room.inventory(groups=groups)
        started = time.monotonic()
        # Every student finishes the lab (labcheck run over SSH, in batches so podman's first runs overlap less).
        with ThreadPoolExecutor(3) as pool:
            runs = list(pool.map(lambda batch: room.labcheck("run", inventory, "--limit", ",".join(batch)),
                                 [[s.name for s in students[i:i + 10]] for i in range(0, len(students), 10)]))
        for run in runs:
            if run.returncode != 0:
                print(run.stdout[-3000:], run.stderr[-2000:], file=sys.stderr)
                return 1
        print(f"set-up: {len(students)} students finished the lab in {time.monotonic() - started:.1f}s")
        times: dict[int, float] = {}
        for size in SIZES:
            samples = []
            for _ in range(REPEATS):
                offset = room.log_offset()
                begin = time.monotonic()
                result = room.labcheck("verify", inventory, "--limit", f"first{size}")
                samples.append(time.monotonic() - begin)
                if result.returncode != 0:
                    print(result.stdout[-3000:], file=sys.stderr)
                    return 1
                sessions = room.accepted_sessions(offset)
                assert sessions == {name: 1 for name in groups[f"first{size}"]}, sessions
            times[size] = statistics.median(samples)
            print(f"verify, {size:2d} students: {times[size]:.2f}s wall (median of {REPEATS}), "
                  f"{times[size] / size:.3f}s per host, 1 SSH connection per host")
        ratio = times[max(SIZES)] / times[1]
        print(f"ratio {max(SIZES)} hosts / 1 host: {ratio:.2f} (goal ≤ 2.0)")
        print(f"one host, whole scenario over SSH (process start included): {times[1]:.2f}s (goal < 1s)")
        room.labcheck("reset", inventory)
    finally:
        room.close()
        if not args.state_dir:
            world.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
