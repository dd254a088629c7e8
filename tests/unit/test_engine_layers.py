"""The engine's subpackages import only downward (engine/README.md), and nothing outside images."""

from __future__ import annotations

import ast
from pathlib import Path

import labcheck.engine

ENGINE = Path(labcheck.engine.__file__).parent
# Each layer and what it may import besides itself (the top-level verbs may import everything).
ALLOWED = {
    "base": set(),
    "fsio": {"base"},
    "format": {"base", "fsio"},
    "reference": {"base", "format"},
    "archive": {"base", "fsio"},
    "registry": {"base", "fsio", "format", "reference"},
    "transports": {"base", "fsio", "format", "reference", "registry", "archive"},
}
OUTSIDE_ALLOWED = {"labcheck.errors", "labcheck.engine"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_layers_import_only_downward() -> None:
    problems = []
    for path in sorted(ENGINE.rglob("*.py")):
        layer = path.relative_to(ENGINE).parts[0]
        if layer not in ALLOWED:
            continue
        for module in _imports(path):
            if not module.startswith("labcheck.engine."):
                continue
            target = module.split(".")[2]
            if target != layer and target not in ALLOWED[layer] and (ENGINE / target).is_dir():
                problems.append(f"{path.relative_to(ENGINE)} imports {module}")
    assert problems == []


def test_the_engine_knows_nothing_of_pytest_or_scenarios() -> None:
    problems = []
    for path in sorted(ENGINE.rglob("*.py")):
        for module in _imports(path):
            top = module.split(".")[0]
            if top in {"pytest", "_pytest", "testinfra"} or (
                top == "labcheck" and not any(module.startswith(ok) for ok in OUTSIDE_ALLOWED)
            ):
                problems.append(f"{path.relative_to(ENGINE)} imports {module}")
    assert problems == []
