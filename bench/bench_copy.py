"""Copy a 1 GiB-layer image registry→dir and registry→registry with labcheck and skopeo; print ratios.

curl reading the same blob into /dev/null is measured too: the registry's own ceiling.
Usage: .venv/bin/python bench/bench_copy.py [--size-mib 1024] [--state-dir DIR] [--rounds 2]
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import (  # noqa: E402
    CopyBench,
    MiB,
    Measure,
    auth_file,
    copy_bench,
    curl_blob,
    print_summary,
    print_table,
    push_big_image,
    skopeo_command,
    timed,
)

PATHS = ["registry→dir", "registry→registry"]


def measure(bench: CopyBench, size_mib: int, rounds: int) -> tuple[list[Measure], int]:
    """registry→dir and registry→registry with both tools (and curl's ceiling), `rounds` times; the layer size."""
    world, workdir, env = bench.world, bench.workdir, bench.env
    tools = {
        "skopeo": skopeo_command("copy", "--quiet"),
        "labcheck": [sys.executable, "-m", "labcheck.cli", "copy", "--quiet"],
    }
    image = push_big_image(world, "big", size_mib * MiB, workdir)
    size = image.layer_size
    authfile = str(auth_file(world, workdir))
    src = f"docker://{world.source_registry}/big:latest"
    rows: list[Measure] = []
    for round_ in range(rounds):
        rows.append(curl_blob(world, "big", image.layer_digest, size, f"curl registry→/dev/null (round {round_ + 1})"))
        for name, tool in tools.items():
            target = workdir / f"{name}-dir"
            shutil.rmtree(target, ignore_errors=True)
            rows.append(timed(f"{name} registry→dir (round {round_ + 1})", [*tool, src, f"dir:{target}"],
                              env, size, tool=name, path="registry→dir"))
            shutil.rmtree(target, ignore_errors=True)
            dest = f"docker://{world.dest_registry}/bench-{name}-{round_}-{os.getpid()}:latest"
            rows.append(timed(f"{name} registry→registry (round {round_ + 1})",
                              [*tool, "--dest-authfile", authfile, src, dest], env, size,
                              tool=name, path="registry→registry"))
    return rows, size


def main() -> int:
    bench = copy_bench(__doc__)
    try:
        rows, size = measure(bench, bench.args.size_mib, bench.args.rounds)
        print(f"\nimage: one uncompressed layer of {size / MiB:.0f} MiB (random bytes); "
              "curl is the registry's ceiling (its blob into /dev/null)\n")
        print_table(rows)
        print()
        print_summary(rows, PATHS)
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
