"""Scenarios by id: the ones shipped with labcheck, and a SCENARIO argument that is a file or an id.

A wheel carries them in labcheck/shipped/ (copied there at build time by setup.py); a source
checkout (or an editable install) has them in the repository's scenarios/ and course/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import labcheck
from labcheck.errors import UsageError

_PACKAGE = Path(labcheck.__file__).resolve().parent


def shipped_dir(kind: str) -> Path | None:
    """Where the shipped `scenarios` or `course` files are: the wheel's copy, else the source checkout's."""
    for candidate in (_PACKAGE / "shipped" / kind, _PACKAGE.parent / kind):
        if candidate.is_dir() and (candidate.parent.name == "shipped" or (_PACKAGE.parent / "pyproject.toml").is_file()):
            return candidate
    return None


def course_pages() -> list[Path]:
    """The course pages shipped with labcheck (course/*.md), in name order."""
    folder = shipped_dir("course")
    return sorted(folder.glob("*.md")) if folder else []


@dataclass(frozen=True)
class ShippedScenario:
    id: str
    title: str
    path: Path


def shipped_scenarios() -> list[ShippedScenario]:
    """Every shipped scenario, linted and in name order; a file that does not load is left out."""
    from labcheck.scenario.model import load_scenario

    folder = shipped_dir("scenarios")
    found = []
    for path in sorted(folder.glob("*.y*ml")) if folder else []:
        try:
            scenario = load_scenario(path)
        except UsageError:
            continue
        found.append(ShippedScenario(scenario.id, scenario.title, path))
    return found


def resolve_scenario(argument: str) -> Path:
    """A scenario file named on the command line, or the shipped scenario with that id."""
    path = Path(argument)
    if path.is_file():
        return path
    if path.suffix in (".yaml", ".yml") or "/" in argument:
        raise UsageError(f"no scenario file {argument}", hint="'labcheck scenarios' lists the shipped ones by id")
    folder = shipped_dir("scenarios")
    if folder is not None and (folder / f"{argument}.yaml").is_file():
        return folder / f"{argument}.yaml"
    shipped = shipped_scenarios()
    for scenario in shipped:
        if scenario.id == argument:
            return scenario.path
    known = ", ".join(s.id for s in shipped) or "none"
    raise UsageError(f"no scenario file or shipped scenario {argument!r}", hint=f"shipped: {known}")
