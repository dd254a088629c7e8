"""Reports of real runs on the lab world: results JSON, JUnit names, pytest-html, the class dashboard in a
real headless Chromium, and a scan of everything a run wrote or printed for the destination password."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest

from labcheck.labenv.world import LabWorld

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parent.parent.parent
SCENARIO = ROOT / "scenarios" / "skopeo-moving-sharing.yaml"
REPORTS = ROOT / "reports"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@dataclass
class ClassSession:
    """Real runs over one lab session, each with its own hosts; their results JSON files, oldest first."""

    world: LabWorld
    work: Path
    env: dict[str, str]
    files: list[Path] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def labcheck(self, *argv: str, expect: int | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "labcheck.cli", *argv], env=self.env, capture_output=True,
                                text=True, timeout=600, cwd=self.work)
        self.outputs.append(result.stdout + result.stderr)
        if expect is not None:
            assert result.returncode == expect, result.stdout + result.stderr
        return result

    def run(self, mode: str, name: str, students: dict[str, dict[str, str]], *extra: str, expect: int,
            unreachable: bool = False) -> Path:
        path = self.work / f"{len(self.files) + 1}-{name}.json"
        self.labcheck(mode, str(SCENARIO), *self.hosts_arguments(students, unreachable), "--json", str(path), *extra,
                      expect=expect)
        self.files.append(path)
        return path

    def hosts_arguments(self, students: dict[str, dict[str, str]], unreachable: bool) -> list[str]:
        """Named hosts of this machine with their own vars: a class inventory where labcheck has one, else
        `--hosts local://NAME` with the (one) student's vars as --var."""
        if "--inventory" in self.labcheck("verify", "--help").stdout:
            entries: list[dict] = [{"name": name, "host": "local", "vars": values} for name, values in students.items()]
            if unreachable:
                entries.append({"name": "nobody@127.0.0.1:1", "host": "127.0.0.1", "port": 1, "user": "nobody"})
            inventory = self.work / f"class-{len(self.files) + 1}.yaml"
            inventory.write_text(json.dumps({"students": entries}))  # JSON is YAML
            return ["--inventory", str(inventory)]
        assert len(students) == 1
        uris = [f"local://{name}" for name in students] + (["ssh://nobody@127.0.0.1:1"] if unreachable else [])
        overrides = [arg for values in students.values() for k, v in values.items() for arg in ("--var", f"{k}={v}")]
        return ["--hosts", ",".join(uris), *overrides]

    def pull_to_dir(self, directory: Path) -> None:
        subprocess.run(["skopeo", "copy", f"docker://{self.world.source_registry}/fedora", f"dir:{directory}"],
                       env=self.env, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def class_session(lab_world: LabWorld, tmp_path_factory: pytest.TempPathFactory) -> ClassSession:
    """Four real runs: carol (nothing done) with an unreachable host, alice doing the whole lab, bob with his
    own directory and registry repository (nothing pushed there), then carol again after pulling to her directory.

    The hosts are named students on this machine with their own `dir_path` and `dest` (an inventory's
    vars, or --var recorded in the results' `vars`); the podman, Docker and source-registry state is shared.
    """
    work = tmp_path_factory.mktemp("class")
    session = ClassSession(lab_world, work, {**os.environ, **lab_world.env()})
    session.labcheck("reset", str(SCENARIO), "--var", f"dir_path={work / 'none'}")
    carol = {"carol": {"dir_path": str(work / "carol")}}
    session.run("verify", "carol", carol, expect=3, unreachable=True)
    session.run("run", "alice", {"alice": {"dir_path": str(work / "alice")}}, expect=0)
    session.pull_to_dir(work / "bob")
    session.run("verify", "bob", {"bob": {"dir_path": str(work / "bob"), "dest": f"{lab_world.dest_registry}/bob"}},
                expect=1)
    session.pull_to_dir(work / "carol")
    session.run("verify", "carol-later", carol, "-k", "pull-to-dir", expect=0)
    return session


def latest_states(files: list[Path]) -> dict[tuple[str, str], dict]:
    """Each (host, step)'s latest step result, computed from the JSON files directly."""
    runs = sorted((json.loads(f.read_text()) for f in files), key=lambda d: d["finished"])
    states: dict[tuple[str, str], dict] = {}
    for data in runs:
        for host in data["hosts"]:
            for step in host["steps"]:
                states[(host["name"], step["id"])] = step
    return states


def test_results_json_of_real_runs_follows_the_published_schema(class_session: ClassSession) -> None:
    schema = json.loads((ROOT / "docs" / "results-schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for path in class_session.files:
        data = json.loads(path.read_text())
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]
        assert not errors, f"{path.name}: {errors}"
    first = json.loads(class_session.files[0].read_text())
    assert first["scenario"] == {"id": "skopeo-moving-sharing", "title": "Skopeo - Moving & Sharing", "version": "1",
                                 "path": str(SCENARIO)}
    assert first["mode"] == "verify" and first["profile"] == "offline"
    carol, nobody = first["hosts"]
    assert carol["target"].startswith("local://") and carol["reachable"]
    assert [s["status"] for s in carol["steps"]] == ["failed"] * 6  # the remote inspect leaves no trace: not done while nothing later is
    assert nobody["name"] == "nobody@127.0.0.1:1" and nobody["reachable"] is False and nobody["error"]
    assert {s["status"] for s in nobody["steps"]} == {"unreachable"}
    failed_dir = carol["steps"][3]
    assert failed_dir["id"] == "pull-to-dir" and failed_dir["checks"][0]["actual"] == "no such directory"
    assert failed_dir["hint"].startswith("skopeo copy docker://")
    alice = json.loads(class_session.files[1].read_text())
    assert alice["summary"]["passed"] == 6 and alice["exit_code"] == 0
    copy = alice["hosts"][0]["steps"][5]["actions"][0]
    assert copy["ok"] and copy["description"].startswith("copy --dest-creds *** docker://")


def test_the_class_dashboard_in_headless_chromium(class_session: ClassSession, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    REPORTS.mkdir(exist_ok=True)
    page = REPORTS / "class-dashboard.html"
    class_session.labcheck("report", *map(str, class_session.files), "-o", str(page), expect=0)
    expected = latest_states(class_session.files)

    options = Options()
    options.binary_location = CHROMIUM  # Debian's; with the driver path given, Selenium Manager never runs
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1500,1000",
                     f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(page.as_uri())
        cells = driver.find_elements(By.CSS_SELECTOR, "#matrix button.cell")
        shown = {(c.get_attribute("data-host"), c.get_attribute("data-step")): c for c in cells}
        assert len(shown) == 4 * 6  # carol, nobody@127.0.0.1:1, alice, bob × six steps
        for key, cell in shown.items():
            assert cell.get_attribute("data-status") == expected[key]["status"], key
            assert cell.text in "✔✘–!?", key  # a symbol as well as a colour
        assert expected[("carol", "pull-to-dir")]["status"] == "passed"  # changed by the last run
        assert "was failed, changed" in shown[("carol", "pull-to-dir")].get_attribute("title") or \
            "since" in shown[("carol", "pull-to-dir")].get_attribute("title")

        failed = shown[("bob", "registry-to-registry")]
        assert failed.get_attribute("data-status") == "failed"
        assert not driver.find_element(By.ID, "details").is_displayed()
        failed.click()
        details = driver.find_element(By.ID, "details")
        assert details.is_displayed()
        hint = expected[("bob", "registry-to-registry")]["hint"]
        assert "/bob/fedora" in hint
        assert driver.find_element(By.CSS_SELECTOR, "#d-hint code").text == hint
        assert "host unreachable" not in details.text and "failed" in details.text
        assert expected[("bob", "registry-to-registry")]["checks"][0]["expected"] in details.text
        driver.save_screenshot(str(REPORTS / "class-dashboard.png"))

        Select(driver.find_element(By.ID, "sort")).select_by_value("progress-desc")
        order = [r.get_attribute("data-host") for r in driver.find_elements(By.CSS_SELECTOR, "tr.host-row")]
        assert order == ["alice", "bob", "carol", "nobody@127.0.0.1:1"]
        driver.find_element(By.ID, "unfinished").click()
        visible = [r.get_attribute("data-host") for r in driver.find_elements(By.CSS_SELECTOR, "tr.host-row")
                   if r.is_displayed()]
        assert visible == ["bob", "carol", "nobody@127.0.0.1:1"]
        assert driver.find_element(By.ID, "shown").text == "3 of 4 hosts shown"

        completion = driver.find_element(By.CSS_SELECTOR, '.completion td[data-step="registry-to-registry"] small')
        assert completion.text == "1/4"
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
    assert (REPORTS / "class-dashboard.png").stat().st_size > 10_000


def test_junit_and_html_reports_of_a_run(class_session: ClassSession, tmp_path: Path) -> None:
    junit, html = tmp_path / "verify.xml", tmp_path / "verify.html"
    bob = {"bob": {"dir_path": str(class_session.work / "bob"), "dest": f"{class_session.world.dest_registry}/bob"}}
    class_session.labcheck("verify", str(SCENARIO), *class_session.hosts_arguments(bob, False),
                           "--junitxml", str(junit), "--html", str(html), expect=1)
    xml = junit.read_text()
    assert '<testcase classname="skopeo-moving-sharing" name="pull-to-dir[bob]"' in xml
    assert '<testcase classname="skopeo-moving-sharing" name="registry-to-registry[bob]"' in xml
    assert "hint: skopeo copy docker://" in xml  # the failure text is repr_failure's
    page = html.read_text()
    for text in ("Scenario version", "skopeo-moving-sharing (Skopeo - Moving &amp; Sharing)", "Profile",
                 "bob (local://", "registry_image", "expected", "actual", "hint:", "--dest-creds"):
        assert text in page, text
    assert "<script src=" not in page and "<link rel=\"stylesheet\" href=" not in page  # self-contained


LEAKY_SCENARIO = """\
id: leaky-lab
title: A lab whose steps print the destination credentials
version: 2
default_profile: offline
profiles:
  offline:
    lab_env: true
    vars:
      dest_creds: "{{ lab.dest_creds }}"
steps:
  - id: print-creds
    title: Print the credentials in every form
    do:
      run: >-
        echo plain {{ dest_creds }};
        printf %s '{{ dest_creds }}' | base64;
        python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' '{{ dest_creds }}'
    verify:
      - command:
          run: "echo 'creds={{ dest_creds }}'; echo '{{ dest_creds }}' >&2; exit 3"
          exit_status: 0
    hint: "skopeo copy --dest-creds {{ dest_creds }} docker://a docker://b"
"""


def test_nothing_a_run_writes_or_prints_holds_the_password(class_session: ClassSession, tmp_path: Path) -> None:
    world = class_session.world
    creds = world.creds_file.read_text().strip()
    password = world.dest_credentials().password
    assert creds.endswith(":" + password) and len(password) >= 12
    forms = {password, quote(password, safe=""), base64.b64encode(creds.encode()).decode(),
             base64.b64encode(password.encode()).decode(), quote(creds, safe="")}
    out = tmp_path / "out"
    out.mkdir()
    printed: list[str] = []

    # The Skopeo lab through the CLI, with the real skopeo, every report on.
    result = class_session.labcheck("run", str(SCENARIO), "--driver", "skopeo", "--var", f"dir_path={out / 'dir'}",
                                    "--html", str(out / "skopeo.html"), "--junitxml", str(out / "skopeo.xml"),
                                    "--json", str(out / "skopeo.json"), expect=0)
    printed.append(result.stdout + result.stderr)
    class_session.labcheck("report", str(out / "skopeo.json"), "-o", str(out / "skopeo-class.html"), expect=0)

    # A scenario that prints the credentials (and fails on them), as plain pytest with debug logs kept.
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(LEAKY_SCENARIO)
    argv = [sys.executable, "-m", "pytest", str(leaky), "-c", os.devnull, "--rootdir", str(tmp_path),
            "-p", "no:cacheprovider", "--hosts=local://", "--labcheck-mode=run", "-rA", "--log-level=DEBUG",
            f"--log-file={out / 'leaky.log'}", "--log-file-level=DEBUG", f"--html={out / 'leaky.html'}",
            "--self-contained-html", f"--junitxml={out / 'leaky.xml'}", "-o", "junit_logging=all",
            f"--labcheck-json={out / 'leaky.json'}"]
    leaky_run = subprocess.run(argv, env=class_session.env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    printed.append(leaky_run.stdout + leaky_run.stderr)
    assert leaky_run.returncode == 1, leaky_run.stdout + leaky_run.stderr  # the check fails, by design
    class_session.labcheck("report", str(out / "leaky.json"), "-o", str(out / "leaky-class.html"), expect=0)
    printed.extend(class_session.outputs[-1:])

    written = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".html", ".xml", ".json", ".log"))
    assert {p.name for p in written} >= {"skopeo.html", "skopeo.xml", "skopeo.json", "skopeo-class.html",
                                         "leaky.html", "leaky.xml", "leaky.json", "leaky.log", "leaky-class.html"}
    written += list(world.run_dir.glob("*.log"))
    for path in written:
        text = path.read_text(errors="replace")
        leaked = [form for form in forms if form in text]
        assert not leaked, f"{path}: the password leaked ({len(leaked)} form(s))"
    for text in printed:
        assert not [form for form in forms if form in text], text[-3000:]
    # The secret did flow through every output and was masked there, not merely absent.
    for name in ("leaky.json", "leaky.html", "leaky.xml", "leaky.log", "leaky-class.html"):
        assert "***" in (out / name).read_text(), name
    assert "plain ***" in (out / "leaky.log").read_text()  # testinfra's debug log of the command's output
    assert "creds=***" in leaky_run.stdout  # the failure, and the captured log of -rA
    data = json.loads((out / "leaky.json").read_text())
    assert data["hosts"][0]["steps"][0]["hint"] == "skopeo copy --dest-creds *** docker://a docker://b"
