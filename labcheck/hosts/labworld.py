"""Which lab world a host sees: its own (the env.sh of its state directory), or — when the host is this
very machine, as on a shared lab server — the one labcheck itself was given."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The host's machine id, a blank line, then the env.sh `labcheck lab up` wrote in the state directory
# the host's user would use (LABCHECK_STATE_DIR, else the default), when it is there and readable.
DISCOVER_COMMAND = ('cat /etc/machine-id 2>/dev/null; echo; '
                    'd=${LABCHECK_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/labcheck/lab}; '
                    '[ -r "$d/env.sh" ] && cat "$d/env.sh"; true')


@dataclass(frozen=True)
class HostLabWorld:
    same_machine: bool  # the host is the machine labcheck runs on
    env: dict[str, str] | None  # the variables of the host's own lab world; None when it has none


def local_machine_id() -> str:
    try:
        return Path("/etc/machine-id").read_text().strip()
    except OSError:
        return ""


def parse_exports(text: str) -> dict[str, str]:
    """`export NAME=VALUE` lines (as `labcheck lab env` prints them) as a mapping.

    >>> parse_exports("export A=1\\nexport B='x y'\\n# a comment\\n")
    {'A': '1', 'B': 'x y'}
    """
    found: dict[str, str] = {}
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            found[name] = value
    return found


def find_host_lab_world(host: Any, *, state_dir: str | None = None) -> HostLabWorld:
    """Ask the host (one command) which lab world it has; state_dir: the LABCHECK_STATE_DIR its inventory names."""
    prefix = f"export LABCHECK_STATE_DIR={shlex.quote(state_dir)}; " if state_dir else ""
    result = host.run(prefix + DISCOVER_COMMAND)
    machine_id, _, rest = result.stdout.partition("\n")
    env = parse_exports(rest)
    ours = local_machine_id()
    return HostLabWorld(same_machine=bool(ours) and machine_id.strip() == ours,
                        env=env if env.get("LABCHECK_SOURCE_REGISTRY") else None)
