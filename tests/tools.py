"""The real skopeo and labcheck as processes, side by side: what the interop tests compare."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

SKOPEO = shutil.which("skopeo")


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    assert SKOPEO is not None
    proc = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def labcheck(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([sys.executable, "-m", "labcheck.cli", *args], capture_output=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def tree(path: Path) -> dict[str, bytes]:
    """Every file under path with its bytes (directories are implied by the names)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def skopeo_message(stderr: str) -> str:
    """The message of skopeo's `level=fatal msg="…"` line, unquoted."""
    match = re.search(r'level=fatal msg="((?:[^"\\]|\\.)*)"', stderr)
    assert match, stderr
    return json.loads(f'"{match.group(1)}"')
