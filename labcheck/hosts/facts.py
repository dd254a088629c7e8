"""What templates and checks know of a host (user, uid, home, runtime dir, machine), gathered in one command."""

from __future__ import annotations

from typing import Any

from labcheck.errors import LabcheckError

# The runtime directory a non-root user's podman needs when the session has none (SSH without a
# login manager): the one podman itself would choose — /run/user/UID if it is the user's, else
# $TMPDIR/podman-run-UID, made 0700 — so that labcheck's podman and the student's agree.
_RUNTIME_DIR = ('u=$(id -u); r=${XDG_RUNTIME_DIR:-}; '
                'if [ -z "$r" ] && [ "$u" != 0 ]; then '
                'if [ -d "/run/user/$u" ] && [ -O "/run/user/$u" ]; then r=/run/user/$u; '
                'else r=${TMPDIR:-/tmp}/podman-run-$u; mkdir -m 700 -p "$r" 2>/dev/null; '
                '{ [ -d "$r" ] && [ -O "$r" ] && [ ! -L "$r" ]; } || r=; fi; fi; ')
FACTS_COMMAND = (_RUNTIME_DIR + 'printf "%s\\n" "$(id -un)" "$u" "$HOME" "${XDG_RUNTIME_DIR:-}" "$(uname -m 2>/dev/null)" '
                 '"$r"')


def gather_facts(host: Any, name: str) -> dict[str, str]:
    """{user, uid, home, xdg_runtime_dir, host, machine, runtime_dir}; one round trip instead of testinfra's several.

    xdg_runtime_dir is the session's own ("" when it has none); runtime_dir is one the user can use.

    machine is `uname -m` ("" when unknown): the checks that compare digests with a list need the
    host's platform, asked here once per host instead of once per check."""
    result = host.run(FACTS_COMMAND)
    lines = result.stdout.split("\n")
    if result.rc != 0 or len(lines) < 4 or not lines[0]:
        raise LabcheckError(f"cannot learn the user and home directory on {name}: "
                            f"{(result.stderr or result.stdout).strip()[:200] or f'exit status {result.rc}'}")
    user, uid, home, runtime = lines[:4]
    machine = lines[4].strip() if len(lines) > 4 else ""
    usable_runtime = lines[5].strip() if len(lines) > 5 else runtime
    return {"user": user, "uid": uid, "home": home, "xdg_runtime_dir": runtime, "host": name, "machine": machine,
            "runtime_dir": usable_runtime}
