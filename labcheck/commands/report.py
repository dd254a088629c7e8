"""`labcheck report RESULTS.json… -o reports/class.html`: the class dashboard from results JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="merge results JSON of one or more runs into the class dashboard (one HTML page)",
        description="Merge the results JSON of one or more runs (labcheck run|verify|check --json FILE) of one "
        "scenario into a self-contained HTML page: a hosts × steps matrix showing each host's latest state per "
        "step and when it changed. A directory stands for every *.json file in it. Exit 2 when an input is not "
        "results JSON.")
    parser.add_argument("results", nargs="+", metavar="RESULTS.json|DIR")
    parser.add_argument("-o", "--output", default="reports/class.html", metavar="FILE",
                        help="where to write the page (default: reports/class.html)")
    parser.add_argument("--title", help="the page's title (default: the scenario's title)")
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from labcheck.report.dashboard import merge, render
    from labcheck.report.json_results import load_results

    files = [path for name in args.results
             for path in (sorted(Path(name).glob("*.json")) if Path(name).is_dir() else [Path(name)])]
    runs = [(path.name, load_results(path)) for path in files]
    dashboard = merge(runs)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(dashboard, title=args.title))
    print(f"labcheck report: {len(dashboard.hosts)} hosts × {len(dashboard.steps)} steps from "
          f"{len(dashboard.runs)} run(s) → {output}", file=sys.stderr)
    return 0
