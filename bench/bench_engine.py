"""Every path of issue 13 in one run, labcheck beside skopeo: the no-op re-copy (every blob already at
the destination), `--version`, the local engines' paths (bench_local_engines.py), registry→dir and
registry→registry (bench_copy.py), each with labcheck's peak RSS; one table at the end.

The no-op re-copy is of the lab's seeded fedora image (gzip layers); the other paths copy a
one-layer image of --size-mib random bytes, uncompressed, so registry→registry includes compressing it.
Usage: .venv/bin/python bench/bench_engine.py [--size-mib 256] [--rounds 2] [--noop-runs 7] [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_copy  # noqa: E402
import bench_local_engines  # noqa: E402
from common import CopyBench, MiB, Measure, auth_file, copy_bench, skopeo_command, timed  # noqa: E402

RSS_GOAL_MIB = 100


def _flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--noop-runs", type=int, default=7, help="timed no-op re-copies per tool")


def measure_noop(bench: CopyBench, runs: int) -> list[Measure]:
    """registry→registry again, when the destination already has every blob: checks and a manifest PUT.

    The lab's seeded fedora image, whose layers are gzip: an uncompressed layer would be compressed
    again on every push (skopeo runs without its blob-info cache here), which is no no-op."""
    world, workdir, env = bench.world, bench.workdir, bench.env
    authfile = str(auth_file(world, workdir))
    src = f"docker://{world.source_registry}/fedora:latest"
    tools = {
        "skopeo": skopeo_command("copy", "--quiet"),
        "labcheck": [sys.executable, "-m", "labcheck.cli", "copy", "--quiet"],
    }
    rows: list[Measure] = []
    for name, tool in tools.items():
        argv = [*tool, "--dest-authfile", authfile, src, f"docker://{world.dest_registry}/noop-{name}:latest"]
        timed(f"{name} first copy", argv, env, 0)  # afterwards every blob is there
        rows += [timed(f"{name} no-op re-copy", argv, env, 0, tool=name, path="no-op re-copy") for _ in range(runs)]
    versions = {"skopeo": ["skopeo", "--version"], "labcheck": [sys.executable, "-m", "labcheck.cli", "--version"]}
    for name, argv in versions.items():
        rows += [timed(f"{name} --version", argv, env, 0, tool=name, path="--version") for _ in range(runs)]
    return rows


def print_engine_table(rows: list[Measure], paths: list[str], size: int) -> None:
    """One line per path: each tool's best and median seconds, labcheck's speed against skopeo's, its peak RSS."""
    print(f"\nimage: one uncompressed layer of {size / MiB:.0f} MiB (random bytes); best of the runs, "
          "speed = skopeo's best time / labcheck's best time\n")
    print(f"| {'path':<33} | {'skopeo s':>8} | {'labcheck s':>10} | {'median skopeo/labcheck':>22} "
          f"| {'speed':>6} | {'labcheck peak RSS MiB':>21} |")
    print(f"|{'-' * 35}|{'-' * 10}:|{'-' * 12}:|{'-' * 24}:|{'-' * 7}:|{'-' * 22}:|")
    for path in paths:
        runs = {tool: [r for r in rows if r.path == path and r.tool == tool] for tool in ("skopeo", "labcheck")}
        if not runs["skopeo"] or not runs["labcheck"]:
            continue
        best = {tool: min(r.seconds for r in found) for tool, found in runs.items()}
        median = {tool: statistics.median(r.seconds for r in found) for tool, found in runs.items()}
        rss = max(r.peak_rss_mib for r in runs["labcheck"])
        flag = "" if rss <= RSS_GOAL_MIB else f" (over {RSS_GOAL_MIB})"
        print(f"| {path:<33} | {best['skopeo']:8.2f} | {best['labcheck']:10.2f} | "
              f"{median['skopeo']:>10.2f} / {median['labcheck']:<9.2f} | {best['skopeo'] / best['labcheck']:5.2f}x "
              f"| {rss:>16.0f}{flag:>5} |")


def main() -> int:
    bench = copy_bench(__doc__, size_mib=256, more_flags=_flags)
    args = bench.args
    try:
        rows = measure_noop(bench, args.noop_runs)
        local_rows, size = bench_local_engines.measure(bench, args.size_mib, args.rounds)
        copy_rows, _ = bench_copy.measure(bench, args.size_mib, args.rounds)
        paths = ["no-op re-copy", "--version", *bench_local_engines.PATHS, *bench_copy.PATHS]
        print_engine_table(rows + local_rows + copy_rows, paths, size)
        ceiling = [r for r in copy_rows if r.tool == "curl"]
        if ceiling:
            print(f"\ncurl reading the layer from the registry (its ceiling): best "
                  f"{min(r.seconds for r in ceiling):.2f} s")
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
