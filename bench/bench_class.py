"""`labcheck verify` of the whole Skopeo scenario over SSH for 1, 10 and 30 students (real users, one sshd on
loopback, every student finished): wall time, the 30-to-1 ratio (goal ≤ 2.0) and the time per host.

The students' "VMs" are users of this machine: their sshd, podman, skopeo and docker, and the
registries and dockerd that answer them, run on the same CPUs as labcheck. So each size also
prints the CPU time the whole machine spent (from /proc/stat) and labcheck's own share (its
process's rusage): the wall time of a large class cannot go below machine CPU / cores.

    .venv/bin/python bench/bench_class.py [--state-dir DIR]   # as root; creates and removes 30 users
"""

from __future__ import annotations

import argparse
import os
import resource
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


def machine_cpu_seconds() -> float:
    """CPU time spent by everything on this machine so far (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:8]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields)
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
        cores = os.cpu_count() or 1
        for size in SIZES:
            samples, machine, own = [], [], []
            for _ in range(REPEATS):
                offset = room.log_offset()
                cpu_before, own_before = machine_cpu_seconds(), children_cpu_seconds()
                begin = time.monotonic()
                result = room.labcheck("verify", inventory, "--limit", f"first{size}")
                samples.append(time.monotonic() - begin)
                machine.append(machine_cpu_seconds() - cpu_before)
                own.append(children_cpu_seconds() - own_before)
                if result.returncode != 0:
                    print(result.stdout[-3000:], file=sys.stderr)
                    return 1
                sessions = room.accepted_sessions(offset)
                assert sessions == {name: 1 for name in groups[f"first{size}"]}, sessions
            times[size] = statistics.median(samples)
            cpu, labcheck_cpu = statistics.median(machine), statistics.median(own)
            print(f"verify, {size:2d} students: {times[size]:.2f}s wall (median of {REPEATS}), "
                  f"{times[size] / size:.3f}s per host, 1 SSH connection per host; "
                  f"CPU: machine {cpu:.2f}s = labcheck {labcheck_cpu:.2f}s + students' tools, sshd, "
                  f"registries, dockerd, kernel {cpu - labcheck_cpu:.2f}s; machine CPU / {cores} cores = "
                  f"{cpu / cores:.2f}s")
        ratio = times[max(SIZES)] / times[1]
        print(f"ratio {max(SIZES)} hosts / 1 host: {ratio:.2f} (goal ≤ 2.0)")
        print(f"one host, whole scenario over SSH (process start included): {times[1]:.2f}s (goal < 1s)")
        print(f"per host at {max(SIZES)} students: {times[max(SIZES)] / max(SIZES):.3f}s (goal < 1s)")
        room.labcheck("reset", inventory)
    finally:
        room.close()
        if not args.state_dir:
            world.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
