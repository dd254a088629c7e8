"""Copy a 1 GiB-layer image registry→dir and registry→registry with labcheck and skopeo; print ratios.

Usage: .venv/bin/python bench/bench_copy.py [--size-mib 1024] [--state-dir DIR] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import MiB, Measure, auth_file, lab_world, print_table, push_big_image, timed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--state-dir")
    args = parser.parse_args()
    world, owned = lab_world(args.state_dir)
    workdir = Path(tempfile.mkdtemp(prefix="labcheck-bench-"))
    env = {**os.environ, **world.env()}
    labcheck = [sys.executable, "-m", "labcheck.cli", "copy", "--quiet"]
    skopeo = ["skopeo", "copy", "--quiet"]
    try:
        size = push_big_image(world, "big", args.size_mib * MiB, workdir)
        authfile = str(auth_file(world, workdir))
        src = f"docker://{world.source_registry}/big:latest"
        rows: list[Measure] = []
        for round_ in range(args.rounds):
            for name, tool in (("skopeo", skopeo), ("labcheck", labcheck)):
                target = workdir / f"{name}-dir"
                shutil.rmtree(target, ignore_errors=True)
                rows.append(timed(f"{name} registry→dir (round {round_ + 1})", [*tool, src, f"dir:{target}"], env, size))
                shutil.rmtree(target, ignore_errors=True)
                dest = f"docker://{world.dest_registry}/bench-{name}-{round_}-{os.getpid()}:latest"
                rows.append(timed(f"{name} registry→registry (round {round_ + 1})",
                                  [*tool, "--dest-authfile", authfile, src, dest], env, size))
        print(f"\nimage: one uncompressed layer of {size / MiB:.0f} MiB (random bytes)\n")
        print_table(rows)
        print()
        for path in ("registry→dir", "registry→registry"):
            best = {name: min((r for r in rows if r.label.startswith(f"{name} {path}")), key=lambda r: r.seconds)
                    for name in ("skopeo", "labcheck")}
            ratio = best["labcheck"].mb_per_s / best["skopeo"].mb_per_s
            print(f"{path:<18} throughput labcheck/skopeo = {ratio:.2f}x (goal ≥ 1.25)  "
                  f"peak RSS labcheck {best['labcheck'].peak_rss_mib:.0f} MiB (goal ≤ 100), "
                  f"skopeo {best['skopeo'].peak_rss_mib:.0f} MiB")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if owned and not args.state_dir:
            world.down()
            shutil.rmtree(world.state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
