"""The engine's paths into and out of the local engines, labcheck beside skopeo in the same run:
registry→docker-daemon, docker-daemon→dir, registry→containers-storage and containers-storage→docker-daemon
(the lab's Podman-to-Docker move), with the 1 GiB-layer image of bench_copy.py.

Each destination image is removed before every run, so every run writes the whole image. Two images
of the same size keep sources and destinations apart: `big` is kept in the store (the source of
containers-storage→docker-daemon) and copied into the daemon; `big2` is kept in the daemon (the
source of docker-daemon→dir) and copied into the store. An engine never already holds what it receives.
Usage: .venv/bin/python bench/bench_local_engines.py [--size-mib 1024] [--state-dir DIR] [--rounds 2]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import CopyBench, MiB, Measure, copy_bench, print_summary, print_table, push_big_image, skopeo_command, timed  # noqa: E402

PATHS = ["registry→docker-daemon", "docker-daemon→dir", "registry→containers-storage", "containers-storage→docker-daemon"]


def _quiet(argv: list[str], env: dict[str, str]) -> None:
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def measure(bench: CopyBench, size_mib: int, rounds: int) -> tuple[list[Measure], int]:
    """The four local paths with both tools, `rounds` times; the layer size."""
    world, workdir, env = bench.world, bench.workdir, bench.env
    daemon = f"unix://{world.docker_socket}"
    labcheck = [sys.executable, "-m", "labcheck.cli", "copy", "--quiet"]

    def docker_rmi(name: str) -> None:
        _quiet(["docker", "-H", daemon, "rmi", "-f", name], env)

    def podman_rmi(name: str) -> None:
        _quiet(["podman", "rmi", "-f", name], env)

    try:
        size = push_big_image(world, "big", size_mib * MiB, workdir).layer_size
        push_big_image(world, "big2", size_mib * MiB, workdir)
        src, src2 = (f"docker://{world.source_registry}/{repo}:latest" for repo in ("big", "big2"))
        # The sources of the local→local paths, put in place once (by skopeo, as a student would).
        docker_rmi("bench-src:latest")
        subprocess.run([*skopeo_command("copy", "--quiet", "--dest-daemon-host", daemon), src2,
                        "docker-daemon:bench-src:latest"], env=env, check=True)
        podman_rmi("localhost/bench-src:latest")
        subprocess.run([*skopeo_command("copy", "--quiet"), src, "containers-storage:localhost/bench-src:latest"],
                       env=env, check=True)
        rows: list[Measure] = []
        for round_ in range(rounds):
            for name in ("skopeo", "labcheck"):
                def run(path: str, source: str, dest: str, *, src_daemon: bool = False, dst_daemon: bool = False) -> None:
                    flags = [*(["--src-daemon-host", daemon] if src_daemon else []),
                             *(["--dest-daemon-host", daemon] if dst_daemon else [])]
                    argv = [*skopeo_command("copy", "--quiet", *flags)] if name == "skopeo" else [*labcheck]
                    rows.append(timed(f"{name} {path} (round {round_ + 1})", [*argv, source, dest], env, size,
                                      tool=name, path=path))

                docker_rmi(f"bench-{name}:latest")
                run("registry→docker-daemon", src, f"docker-daemon:bench-{name}:latest", dst_daemon=True)
                docker_rmi(f"bench-{name}:latest")
                target = workdir / f"{name}-dir"
                shutil.rmtree(target, ignore_errors=True)
                run("docker-daemon→dir", "docker-daemon:bench-src:latest", f"dir:{target}", src_daemon=True)
                shutil.rmtree(target, ignore_errors=True)
                podman_rmi(f"localhost/bench-{name}:latest")
                run("registry→containers-storage", src2, f"containers-storage:localhost/bench-{name}:latest")
                podman_rmi(f"localhost/bench-{name}:latest")
                docker_rmi(f"bench-cs-{name}:latest")
                run("containers-storage→docker-daemon", "containers-storage:localhost/bench-src:latest",
                    f"docker-daemon:bench-cs-{name}:latest", dst_daemon=True)
                docker_rmi(f"bench-cs-{name}:latest")
    finally:
        docker_rmi("bench-src:latest")
        podman_rmi("localhost/bench-src:latest")
    return rows, size


def main() -> int:
    bench = copy_bench(__doc__)
    try:
        rows, size = measure(bench, bench.args.size_mib, bench.args.rounds)
        print(f"\nimage: one uncompressed layer of {size / MiB:.0f} MiB (random bytes)\n")
        print_table(rows)
        print()
        print_summary(rows, PATHS)
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
