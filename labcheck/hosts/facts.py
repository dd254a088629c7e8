"""What templates and checks know of a host (user, uid, home, runtime dir, machine), gathered in one command."""

from __future__ import annotations

from typing import Any

from labcheck.errors import LabcheckError

FACTS_COMMAND = 'printf "%s\\n" "$(id -un)" "$(id -u)" "$HOME" "${XDG_RUNTIME_DIR:-}" "$(uname -m 2>/dev/null)"'


def gather_facts(host: Any, name: str) -> dict[str, str]:
    """{user, uid, home, xdg_runtime_dir, host, machine}; one round trip instead of testinfra's several.

    machine is `uname -m` ("" when unknown): the checks that compare digests with a list need the
    host's platform, asked here once per host instead of once per check."""
    result = host.run(FACTS_COMMAND)
    lines = result.stdout.split("\n")
    if result.rc != 0 or len(lines) < 4 or not lines[0]:
        raise LabcheckError(f"cannot learn the user and home directory on {name}: "
                            f"{(result.stderr or result.stdout).strip()[:200] or f'exit status {result.rc}'}")
    user, uid, home, runtime = lines[:4]
    machine = lines[4].strip() if len(lines) > 4 else ""
    return {"user": user, "uid": uid, "home": home, "xdg_runtime_dir": runtime, "host": name, "machine": machine}
