"""`labcheck lint`: every problem of a scenario file, each as `file:line:col: message`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import jinja2
import jinja2.meta
import jsonschema

from labcheck.checks.base import CHECKS
from labcheck.scenario.render import BUILTIN_NAMES, ScenarioSandbox, unsafe_attributes
from labcheck.scenario.schema import ACTIONS, scenario_schema
from labcheck.yamlload import LoadedYaml, Path_, YamlSyntaxError, load_yaml


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


def lint_file(path: Path) -> list[Problem]:
    try:
        text = path.read_text()
    except OSError as exc:
        return [Problem(str(path), 1, 1, f"cannot read the scenario: {exc.strerror or exc}")]
    return lint_text(text, str(path))


def lint_text(text: str, filename: str) -> list[Problem]:
    try:
        loaded = load_yaml(text)
    except YamlSyntaxError as exc:
        return [Problem(filename, exc.position.line, exc.position.column, exc.message)]
    linter = _Linter(loaded, filename)
    return sorted(set(linter.problems()), key=lambda p: (p.line, p.column, p.message))


class _Linter:
    def __init__(self, loaded: LoadedYaml, filename: str) -> None:
        self.loaded = loaded
        self.data = loaded.data
        self.filename = filename

    def at(self, path: Path_, message: str, *, key: bool = False) -> Problem:
        position = self.loaded.positions.get((*path, "__key__")) if key else None
        position = position or self.loaded.position(path)
        return Problem(self.filename, position.line, position.column, message)

    def problems(self) -> Iterator[Problem]:
        if not isinstance(self.data, dict):
            yield self.at((), "a scenario is a YAML mapping with id, title and steps")
            return
        for path, _ in self.loaded.duplicate_keys:
            yield self.at(path, f"duplicate key '{path[-1]}'", key=True)
        yield from self.schema_problems()
        yield from self.step_problems()
        yield from self.template_problems()

    # --- the schema ---------------------------------------------------------------------

    def schema_problems(self) -> Iterator[Problem]:
        validator = jsonschema.Draft202012Validator(scenario_schema(),
                                                    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        for error in validator.iter_errors(self.data):
            yield from self.explain(error)

    def explain(self, error: jsonschema.ValidationError) -> Iterator[Problem]:
        path = tuple(error.absolute_path)
        if error.validator == "oneOf" and error.context:
            # An action: a mapping or a list of them; report against the shape that was meant.
            wanted_list = isinstance(error.instance, list)
            for sub in error.context:
                if (sub.schema_path[0] == 1) == wanted_list and sub.validator != "type":
                    yield from self.explain(sub)
                    return
            yield self.at(path, "expected an action (run, copy, inspect or delete) or a list of actions")
            return
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            unknown = [k for k in error.instance if k not in allowed]
            for key in unknown:
                yield self.at((*path, key), self.unknown_key_message(path, key, allowed), key=True)
            return
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else error.message
            yield self.at(path, f"{self.describe(path)} is missing '{missing}'")
            return
        if error.validator in ("minProperties", "maxProperties") and isinstance(error.instance, dict):
            kind = "check" if self.is_check_path(path) else "action"
            names = ", ".join(error.instance) or "nothing"
            yield self.at(path, f"each {kind} has exactly one name; found {names}")
            return
        if error.validator == "type":
            expected = error.validator_value
            expected = " or ".join(map(_json_type, expected)) if isinstance(expected, list) else _json_type(expected)
            yield self.at(path, f"{self.describe(path)} should be {_article(expected)}, "
                                f"not {_type_name(error.instance)}")
            return
        if error.validator == "pattern":
            if isinstance(error.instance, str) and ("{{" in error.instance or "{%" in error.instance):
                return  # a template: its rendered value is checked when the step runs
            yield self.at(path, f"{self.describe(path)} {error.instance!r} should match {error.validator_value}")
            return
        if error.validator == "format":
            if isinstance(error.instance, str) and ("{{" in error.instance or "{%" in error.instance):
                return  # a template: its rendered value is checked when the step runs
            yield self.at(path, f"{self.describe(path)} {error.instance!r} is not a valid "
                                f"{FORMAT_NAMES.get(error.validator_value, error.validator_value)}"
                                + (f": {error.cause}" if error.cause else ""))
            return
        yield self.at(path, f"{self.describe(path)}: {error.message}")

    def is_check_path(self, path: Path_) -> bool:
        return len(path) >= 4 and path[0] == "steps" and path[2] == "verify"

    def unknown_key_message(self, path: Path_, key: str, allowed: list[str]) -> str:
        if self.is_check_path((*path, key)) and len(path) == 4:
            guess = difflib.get_close_matches(str(key), list(CHECKS), n=1)
            suffix = f"; did you mean '{guess[0]}'?" if guess else f"; known checks: {', '.join(sorted(CHECKS))}"
            return f"unknown check '{key}'{suffix}"
        if allowed and set(allowed) == set(ACTIONS):
            return f"unknown action '{key}'; an action is one of: {', '.join(ACTIONS)}"
        guess = difflib.get_close_matches(str(key), allowed, n=1)
        where = self.describe(path)
        hint = f"; did you mean '{guess[0]}'?" if guess else (f"; allowed: {', '.join(allowed)}" if allowed else "")
        return f"unknown key '{key}' in {where}{hint}"

    def describe(self, path: Path_) -> str:
        if not path:
            return "the scenario"
        if path[0] == "steps" and len(path) >= 2 and isinstance(path[1], int):
            step = self.data.get("steps", [])[path[1]] if isinstance(self.data.get("steps"), list) else {}
            name = f"step '{step.get('id')}'" if isinstance(step, dict) and step.get("id") else f"step {path[1] + 1}"
            rest = ".".join(str(p) for p in path[2:])
            return f"{name}" + (f" {rest}" if rest else "")
        return ".".join(str(p) for p in path)

    # --- steps: ids, requires, cycles --------------------------------------------------

    def steps(self) -> list[tuple[int, dict[str, Any]]]:
        steps = self.data.get("steps")
        if not isinstance(steps, list):
            return []
        return [(i, s) for i, s in enumerate(steps) if isinstance(s, dict)]

    def step_problems(self) -> Iterator[Problem]:
        seen: dict[str, int] = {}
        for index, step in self.steps():
            step_id = step.get("id")
            if isinstance(step_id, str):
                if step_id in seen:
                    yield self.at(("steps", index, "id"), f"step id '{step_id}' is used twice (first in step {seen[step_id] + 1})")
                seen.setdefault(step_id, index)
        graph: dict[str, list[str]] = {}
        for index, step in self.steps():
            requires = step.get("requires")
            if not isinstance(requires, list):
                continue
            graph[str(step.get("id"))] = [r for r in requires if isinstance(r, str)]
            for n, required in enumerate(requires):
                if isinstance(required, str) and required not in seen:
                    guess = difflib.get_close_matches(required, list(seen), n=1)
                    yield self.at(("steps", index, "requires", n),
                                  f"step '{step.get('id')}' requires unknown step '{required}'"
                                  + (f"; did you mean '{guess[0]}'?" if guess else ""))
        for cycle in _cycles(graph):
            first = cycle[0]
            yield self.at(("steps", seen.get(first, 0), "requires"),
                          "requirements form a cycle: " + " -> ".join([*cycle, first]))
        profiles = self.data.get("profiles")
        default = self.data.get("default_profile")
        if isinstance(default, str) and (not isinstance(profiles, dict) or default not in profiles):
            yield self.at(("default_profile",), f"default_profile '{default}' is not one of the profiles")

    # --- templates: syntax and undefined variables ---------------------------------------

    def template_problems(self) -> Iterator[Problem]:
        environment = ScenarioSandbox()
        top_vars = self.data.get("vars") if isinstance(self.data.get("vars"), dict) else {}
        profiles = self.data.get("profiles") if isinstance(self.data.get("profiles"), dict) else {}
        contexts: dict[str, set[str]] = {}
        for name, profile in (profiles or {"": {}}).items():
            declared = profile.get("vars") if isinstance(profile, dict) else None
            profile_vars = declared if isinstance(declared, dict) else {}
            contexts[name] = set(top_vars) | set(profile_vars) | BUILTIN_NAMES
        for path, text in _strings(self.data, ()):
            if path and path[0] in ("id",) or "{" not in text or _is_page_text(path):
                continue
            try:
                parsed = environment.parse(text)
            except jinja2.TemplateSyntaxError as exc:
                yield self.at(path, f"template error in {self.describe(path)}: {exc.message}")
                continue
            for name in unsafe_attributes(parsed)[:1]:
                yield self.at(path, f"template error in {self.describe(path)}: attribute '{name}' is not "
                                    "allowed (templates render in a sandbox: no attribute starting with '_')")
            used = jinja2.meta.find_undeclared_variables(parsed)
            only_profile = path[1] if len(path) > 1 and path[0] == "profiles" else None
            for profile_name, defined in contexts.items():
                if only_profile is not None and profile_name != only_profile:
                    continue
                for name in sorted(used - defined):
                    where = f" (profile '{profile_name}')" if profile_name and len(contexts) > 1 and only_profile is None else ""
                    yield self.at(path, f"undefined variable '{name}' in {self.describe(path)}{where}")


def _is_page_text(path: Path_) -> bool:
    """A course page's command, quoted verbatim: not a template (`{{.Id}}` is docker's, not jinja's)."""
    return path[:1] == ("page",) or (len(path) > 2 and path[0] == "steps" and path[2] == "page")


# How a problem names each `format` of the schema; every format the schema uses is checked
# (tests/unit/test_lint.py makes sure the format checker knows each one).
FORMAT_NAMES = {"regex": "regular expression"}


def _strings(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each cycle once, found by depth-first search."""
    found: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):]
                if frozenset(cycle) not in seen_sets:
                    seen_sets.add(frozenset(cycle))
                    found.append(cycle)
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in list(graph):
        if node not in state:
            visit(node)
    return found


def _json_type(name: str) -> str:
    return {"array": "list", "object": "mapping", "integer": "whole number"}.get(name, name)


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "empty"}.get(type(value), type(value).__name__)
