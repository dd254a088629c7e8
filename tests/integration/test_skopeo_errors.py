"""The errors users meet, through labcheck and the real skopeo 1.9.3: the first line says what skopeo says.

skopeo prints `level=fatal msg="…"`; labcheck prints `labcheck COMMAND: …` with the same text, then
its hint on a line of its own.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from labcheck.labenv.world import LabWorld
from tests.tools import SKOPEO, run, skopeo_message

pytestmark = [pytest.mark.lab, pytest.mark.skipif(SKOPEO is None, reason="needs the real skopeo")]
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


# (what users meet, the skopeo arguments with {src}/{dst}/{out} placeholders, env changes)
CASES = [
    ("authentication required", ["inspect", "docker://{dst}/fedora:38"], {}),
    ("authentication denied", ["inspect", "--creds", "{user}:wrong", "docker://{dst}/fedora:38"], {}),
    ("authentication required, copy", ["copy", "-q", "docker://{dst}/fedora:38", "dir:{out}/a"], {}),
    ("authentication denied, copy", ["copy", "-q", "--src-creds", "{user}:wrong", "docker://{dst}/fedora:38",
                                     "dir:{out}/a"], {}),
    ("push without credentials", ["copy", "-q", "docker://{src}/fedora:38", "docker://{dst}/e/fedora:38"], {}),
    ("push with refused credentials", ["copy", "-q", "--dest-creds", "{user}:wrong", "docker://{src}/fedora:38",
                                       "docker://{dst}/e/fedora:38"], {}),
    ("manifest unknown", ["inspect", "docker://{src}/fedora:nope"], {}),
    ("manifest unknown, raw", ["inspect", "--raw", "docker://{src}/fedora:nope"], {}),
    ("repository unknown", ["inspect", "docker://{src}/nope:1"], {}),
    ("repository unknown, copy", ["copy", "-q", "docker://{src}/nope:1", "dir:{out}/a"], {}),
    ("digest unknown", ["inspect", "docker://{src}/fedora@sha256:" + "0" * 64], {}),
    ("no instance for the platform", ["inspect", "--override-arch", "s390x", "docker://{src}/fedora"], {}),
    ("no instance for the platform, copy", ["copy", "-q", "--override-arch", "s390x", "docker://{src}/fedora",
                                            "dir:{out}/a"], {}),
    ("unsupported transport", ["inspect", "bogus:x"], {}),
    ("unsupported transport, copy", ["copy", "bogus:x", "dir:{out}/a"], {}),
    ("no transport", ["inspect", "fedora"], {}),
    ("no transport, copy", ["copy", "fedora", "dir:{out}/a"], {}),
    ("invalid reference", ["inspect", "docker://UPPER/x"], {}),
    ("invalid reference, copy source", ["copy", "docker://UPPER/x", "dir:{out}/a"], {}),
    ("invalid reference, copy destination", ["copy", "docker://{src}/fedora:38", "docker:fedora"], {}),
    ("missing parent directory", ["copy", "-q", "docker://{src}/fedora:38", "dir:{out}/no/such"], {}),
    ("TLS failure", ["inspect", "docker://{src}/fedora:38"], {"SSL_CERT_FILE": SYSTEM_BUNDLE}),
    ("TLS failure, copy", ["copy", "-q", "docker://{src}/fedora:38", "dir:{out}/a"], {"SSL_CERT_FILE": SYSTEM_BUNDLE}),
    ("connection refused", ["inspect", "docker://127.0.0.1:1/x:1"], {}),
    ("connection refused, copy source", ["copy", "-q", "docker://127.0.0.1:1/x:1", "dir:{out}/a"], {}),
]


@pytest.mark.parametrize("what,args,env_changes", CASES, ids=[c[0] for c in CASES])
def test_first_line_is_skopeos_message(lab_world: LabWorld, tmp_path: Path, what: str, args: list[str],
                                       env_changes: dict[str, str]) -> None:
    env = {**os.environ, **lab_world.env(), **env_changes}
    env.pop("REGISTRY_AUTH_FILE", None)
    values = {"src": lab_world.source_registry, "dst": lab_world.dest_registry, "out": tmp_path,
              "user": lab_world.dest_credentials().username}
    argv = [a.format(**values) for a in args]
    theirs = run([SKOPEO, "--insecure-policy", *argv], env)
    shutil.rmtree(tmp_path / "a", ignore_errors=True)  # skopeo opens a dir: destination first and leaves it behind
    ours = run([sys.executable, "-m", "labcheck.cli", *argv], env)
    assert theirs.returncode == 1 and ours.returncode in (1, 2), ours.stderr
    lines = ours.stderr.splitlines()
    assert lines[0] == f"labcheck {argv[0]}: {skopeo_message(theirs.stderr)}"
    assert all(line.startswith("hint: ") for line in lines[1:]) and len(lines) <= 2  # the hint, on its own line
    assert "Traceback" not in ours.stderr
    assert not (tmp_path / "a").exists()  # labcheck leaves nothing behind
