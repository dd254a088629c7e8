"""What templates know of a host (user, uid, home, runtime dir), gathered in one command."""

from __future__ import annotations

from typing import Any

from labcheck.errors import LabcheckError

FACTS_COMMAND = 'printf "%s\\n" "$(id -un)" "$(id -u)" "$HOME" "${XDG_RUNTIME_DIR:-}"'


def gather_facts(host: Any, name: str) -> dict[str, str]:
    """{user, uid, home, xdg_runtime_dir, host}; one round trip instead of testinfra's several."""
    result = host.run(FACTS_COMMAND)
    lines = result.stdout.split("\n")
    if result.rc != 0 or len(lines) < 4 or not lines[0]:
        raise LabcheckError(f"cannot learn the user and home directory on {name}: "
                            f"{(result.stderr or result.stdout).strip()[:200] or f'exit status {result.rc}'}")
    user, uid, home, runtime = lines[:4]
    return {"user": user, "uid": uid, "home": home, "xdg_runtime_dir": runtime, "host": name}
