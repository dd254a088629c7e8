"""How long the class dashboard of a 30-host × 7-step class takes: `labcheck report` (read and validate the
results JSON, merge, render, write) and the page's load in headless Chromium.

    .venv/bin/python bench/bench_dashboard.py [--hosts 30] [--steps 7] [--runs 3] [--rounds 7]

The results are made by the real results code (RunResults → results JSON) with check details of the size
real runs have; each of the --runs files holds every host, as a lab session's repeated verify runs do.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from labcheck.commands.report import _report
from labcheck.report.json_results import results_json, write_results
from labcheck.redact import Redactor
from labcheck.results import ActionOutcome, CheckResult, RunResults, StepResult


def class_results(hosts: int, steps: int, run: int, finished: datetime) -> dict:
    step_ids = [(f"step-{i + 1}", f"Step {i + 1} of the lab, in words a student reads") for i in range(steps)]
    results = RunResults(scenario_id="bench-lab", scenario_title="Bench lab", mode="verify", profile="offline",
                         steps=step_ids)
    for h in range(hosts):
        name = f"student{h + 1:02d}"
        done = (h * 7 + run * 2) % (steps + 1)  # hosts at every stage, moving on from run to run
        for i, (step_id, title) in enumerate(step_ids):
            status = "passed" if i < done else ("failed" if i == done else "skipped" if h % 5 == 0 else "failed")
            check = CheckResult("dir_image", status == "passed", f"dir:/home/{name}/fedora-skopeo is a complete image",
                                expected="dir:/home/x/fedora-skopeo with manifest.json and every blob, intact",
                                actual="intact" if status == "passed" else "no such directory",
                                reason="" if status == "passed" else "the directory does not exist: run the copy again",
                                commands=[f"ls -1A -- /home/{name}/fedora-skopeo", "sha256sum -- …"],
                                output="manifest.json\nversion\n" * 10)
            results.add(StepResult(step_id, title, name, status, reason=check.reason, duration=0.4,
                                   hint=f"skopeo copy docker://registry.example/fedora dir:$HOME/fedora-skopeo ({i})",
                                   checks=[check], actions=[ActionOutcome("copy docker://a dir:/b", True, "ok")]))
    results.started, results.finished = finished - timedelta(seconds=20), finished
    results.targets = {f"student{h + 1:02d}": f"ssh://student{h + 1:02d}@10.0.0.{h + 10}" for h in range(hosts)}
    return results_json(results, redactor=Redactor())


def browser_load_ms(page: Path) -> float | None:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    if not Path("/usr/bin/chromium").exists():
        return None
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            times = []
            for _ in range(5):
                driver.get(page.as_uri())
                times.append(driver.execute_script(
                    "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;"))
            return statistics.median(times)
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        t0 = datetime(2024, 5, 2, 9, 0, tzinfo=timezone.utc)
        files = [write_results(Path(work) / f"run{r}.json",
                               class_results(args.hosts, args.steps, r, t0 + timedelta(minutes=20 * r)))
                 for r in range(args.runs)]
        page = Path(work) / "class.html"
        ns = argparse.Namespace(results=[str(f) for f in files], output=str(page), title=None)
        seconds = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            _report(ns)
            seconds.append(time.perf_counter() - started)
        size = sum(f.stat().st_size for f in files)
        print(f"labcheck report, {args.hosts} hosts × {args.steps} steps, {args.runs} results files "
              f"({size / 1024:.0f} KiB) → {page.stat().st_size / 1024:.0f} KiB page: "
              f"median {statistics.median(seconds) * 1000:.0f} ms, best {min(seconds) * 1000:.0f} ms "
              f"over {args.rounds} rounds (first {seconds[0] * 1000:.0f} ms)")
        load = browser_load_ms(page)
        if load is not None:
            print(f"headless Chromium, navigation start to load event end: median {load:.0f} ms over 5 loads")


if __name__ == "__main__":
    main()
