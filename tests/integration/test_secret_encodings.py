"""A password holding every character that some output escapes (& < > " ' \\ $ % + and spaces) is
pushed with, printed and failed on; no artifact of the run holds it in any encoding."""

from __future__ import annotations

import base64
import html
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape as xml_escape

import pytest

from labcheck.labenv.components import htpasswd_entry
from labcheck.labenv.world import LabWorld

pytestmark = pytest.mark.lab

USER = "hostile"
# Distinct runs of letters and digits between the special characters: none of them may appear anywhere,
# whatever encoding splits the password around them.
TOKENS = ("Zx8kQ1", "Qw3vT6", "Rt5mN2", "Yu7pL4", "Io9bC3", "Pa2hJ8", "Sd4fG5", "Wq6eR7")
PASSWORD = "Zx8kQ1& <Qw3vT6> \"Rt5mN2\" 'Yu7pL4' \\Io9bC3 $Pa2hJ8 %41Sd4fG5 +Wq6eR7"
CREDS = f"{USER}:{PASSWORD}"

SCENARIO = """\
id: hostile-secret
title: A password every output escapes differently
default_profile: offline
profiles:
  offline:
    lab_env: true
    env:
      CREDS: "{{ secret('HOSTILE_CREDS') }}"
steps:
  - id: push
    title: Push with the password
    do:
      copy:
        src: "docker://{{ lab.source_registry }}/fedora:38"
        dst: "docker://{{ lab.dest_registry }}/hostile/fedora:38"
        dest_creds: "{{ secret('HOSTILE_CREDS') }}"
    verify:
      - registry_image: {ref: "docker://{{ lab.dest_registry }}/hostile/fedora:38",
                         creds: "{{ secret('HOSTILE_CREDS') }}"}
    hint: "skopeo copy --dest-creds '{{ secret('HOSTILE_CREDS') }}' docker://a docker://b"
  - id: print
    title: Print the password in every encoding, then fail on it
    do:
      run: >-
        printf 'plain %s\\n' "$CREDS";
        printf %s "$CREDS" | base64 -w0; echo;
        python3 -c 'import html, json, os, shlex, urllib.parse as u; v = os.environ["CREDS"];
        print(json.dumps(v), json.dumps(v, ensure_ascii=False), html.escape(v), shlex.quote(v),
        u.quote(v, safe=""), u.quote_plus(v))'
    verify:
      - command:
          run: 'echo "creds=$CREDS"; echo "$CREDS" >&2; exit 3'
          exit_status: 0
    hint: "the password was {{ secret('HOSTILE_CREDS') }}"
"""


def encodings(value: str) -> set[str]:
    """value as every output labcheck or a tool under it might write it."""
    raw = value.encode()
    forms = {value, html.escape(value), html.escape(value, quote=False), xml_escape(value),
             xml_escape(value, {'"': "&quot;"}), xml_escape(value, {'"': "&#34;", "'": "&#39;"}),
             json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             shlex.quote(value), shlex.quote(value)[1:-1], quote(value, safe=""), quote(value), quote_plus(value),
             base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return forms | {form.rstrip("=") for form in forms}


@pytest.fixture
def hostile_user(lab_world: LabWorld):
    """A destination registry user with the hostile password (the registry rereads its htpasswd file)."""
    htpasswd = lab_world.state_dir / "registries" / "dest" / "htpasswd"
    before = htpasswd.read_text()
    htpasswd.write_text(before + htpasswd_entry(USER, PASSWORD) + "\n")
    yield
    htpasswd.write_text(before)


def test_no_artifact_holds_the_password_in_any_encoding(lab_world: LabWorld, hostile_user: None,
                                                       tmp_path: Path) -> None:
    scenario = tmp_path / "hostile.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, **lab_world.env(), "HOSTILE_CREDS": CREDS}
    printed: list[str] = []

    def labcheck(*argv: str, expect: int) -> None:
        result = subprocess.run([sys.executable, "-m", "labcheck.cli", *argv], env=env, capture_output=True,
                                text=True, timeout=300, cwd=tmp_path)
        printed.append(result.stdout + result.stderr)
        assert result.returncode == expect, result.stdout + result.stderr

    # labcheck's own command with its native engine, every report on; the print step fails by design.
    labcheck("run", str(scenario), "--html", str(out / "native.html"), "--junitxml", str(out / "native.xml"),
             "--json", str(out / "native.json"), expect=1)
    labcheck("report", str(out / "native.json"), "-o", str(out / "native-class.html"), expect=0)
    # Plain pytest with the real skopeo (the password on its command line, shell-quoted) and debug logs kept.
    argv = [sys.executable, "-m", "pytest", str(scenario), "-c", os.devnull, "--rootdir", str(tmp_path),
            "-p", "no:cacheprovider", "--hosts=local://", "--labcheck-mode=run", "--labcheck-driver=skopeo",
            "-rA", "--log-level=DEBUG", f"--log-file={out / 'skopeo.log'}", "--log-file-level=DEBUG",
            f"--html={out / 'skopeo.html'}", "--self-contained-html", f"--junitxml={out / 'skopeo.xml'}",
            "-o", "junit_logging=all", f"--labcheck-json={out / 'skopeo.json'}"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    printed.append(result.stdout + result.stderr)
    assert result.returncode == 1, result.stdout + result.stderr
    labcheck("report", str(out / "skopeo.json"), "-o", str(out / "skopeo-class.html"), expect=0)

    # The push succeeded with the password, through both drivers: it did flow everywhere.
    for name in ("native.json", "skopeo.json"):
        steps = json.loads((out / name).read_text())["hosts"][0]["steps"]
        assert [s["status"] for s in steps] == ["passed", "failed"], name

    artifacts = {p: p.read_text(errors="replace") for p in sorted(out.iterdir())}
    artifacts |= {p: p.read_text(errors="replace") for p in lab_world.run_dir.glob("*.log")}
    artifacts |= {Path(f"printed-{i}"): text for i, text in enumerate(printed)}
    forms = encodings(PASSWORD) | encodings(CREDS)
    leaks = {}
    for where, text in artifacts.items():
        leaked = sorted(form for form in forms if form in text)
        pieces = [token for token in TOKENS if token in text]
        if leaked or pieces:
            leaks[where.name] = (leaked, [text[max(0, text.find(t) - 80):text.find(t) + 80] for t in pieces[:1]])
    assert not leaks, "the password leaked:\n" + "\n".join(f"{k}: {v}" for k, v in leaks.items())
    # Masked where it flowed, not merely absent.
    for name in ("native.html", "native.xml", "native.json", "native-class.html", "skopeo.html", "skopeo.xml",
                 "skopeo.json", "skopeo.log", "skopeo-class.html"):
        assert "***" in artifacts[out / name], name
    # Each encoding the step printed is masked whole: plain, base64, JSON (twice), HTML, shell, URL (twice).
    for name in ("native.json", "skopeo.json"):
        printing = json.loads((out / name).read_text())["hosts"][0]["steps"][1]["actions"][0]
        assert printing["output"].strip() == "plain ***\n***\n\"***\" \"***\" *** '***' *** ***", name
    assert "hint: the password was ***" in printed[0]
