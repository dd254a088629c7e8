"""`labcheck scenarios`: the scenarios shipped with labcheck, by id."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "scenarios", help="list the scenarios shipped with labcheck (run one by id: labcheck check ID)",
        description="List the scenarios shipped with labcheck: id, title and file. Every command that takes "
        "SCENARIO takes such an id as well as a file.")
    parser.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    from labcheck.scenario.catalog import shipped_scenarios

    found = shipped_scenarios()
    width = max((len(s.id) for s in found), default=0)
    for scenario in found:
        print(f"{scenario.id:<{width}}  {scenario.title}  ({scenario.path})")
    return 0
