"""The soak at size: a few hundred copies (registry→dir, →oci, →registry) through the fault proxy with
random faults; every copy complete and digest-verified, or a clean failure with no destination.
Prints the table of tests/soak.py; exits 1 if any destination was partial or corrupt, or any
outcome was not what its faults call for.

    .venv/bin/python bench/bench_soak.py [--copies 300] [--seed N] [--state-dir DIR] [-v]   # as root
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import lab_world  # noqa: E402
from tests.soak import run_soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None, help="repeat a soak (default: a fresh seed, printed)")
    parser.add_argument("--time-budget", type=float, default=1800.0, help="stop starting copies after this many seconds")
    parser.add_argument("--state-dir", help="reuse (and keep) the lab world in this directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per copy")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"bench: soak seed {seed} (--seed {seed} repeats it)", file=sys.stderr)
    world, owned = lab_world(args.state_dir)
    workdir = Path(tempfile.mkdtemp(prefix="labcheck-soak-"))
    try:
        report = run_soak(world, workdir, copies=args.copies, seed=seed, time_budget=args.time_budget,
                          log=(lambda line: print(line, file=sys.stderr)) if args.verbose else (lambda line: None))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if owned and not args.state_dir:
            world.down()
            shutil.rmtree(world.state_dir, ignore_errors=True)
    print(report.table())
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    return 1 if report.problems or report.partial_or_corrupt or report.credentials_leaked else 0


if __name__ == "__main__":
    raise SystemExit(main())
