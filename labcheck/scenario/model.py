"""Scenario files as objects: load (lint first), choose a profile, render per host."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from labcheck.errors import UsageError
from labcheck.report.redact import REDACTOR, Redactor
from labcheck.scenario.lint import Problem, lint_file
from labcheck.scenario.render import Renderer, resolve_vars
from labcheck.scenario.yamlload import load_yaml


class ScenarioError(UsageError):
    """A scenario file that does not pass lint: every problem, one per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _actions(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Step:
    """One lab step, templates not yet rendered."""

    index: int
    id: str
    title: str
    verify: list[dict[str, Any]]
    do: list[dict[str, Any]] = field(default_factory=list)
    undo: list[dict[str, Any]] = field(default_factory=list)
    hint: str = ""
    description: str = ""
    requires: list[str] = field(default_factory=list)
    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None
    line: int = 1
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    path: Path
    id: str
    title: str
    steps: list[Step]
    description: str = ""
    version: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_profile: str | None = None

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)


# Scenarios already read and linted in this process, by file and its mtime and size: `labcheck verify`
# lints before pytest starts, and pytest's collection loads the same file again.
_LOADED: dict[tuple[Path, int, int], Scenario] = {}


def load_scenario(path: str | Path) -> Scenario:
    """Read and lint a scenario file (once per process while it is unchanged); ScenarioError (exit 2)
    lists every problem."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    if key is not None and key in _LOADED:
        return _LOADED[key]
    scenario = _load(path)
    if key is not None:
        _LOADED[key] = scenario
    return scenario


def _load(path: Path) -> Scenario:
    problems = lint_file(path)
    if problems:
        raise ScenarioError(problems)
    loaded = load_yaml(path.read_text())
    data = loaded.data
    steps = [
        Step(
            index=index, id=raw["id"], title=raw["title"], verify=raw["verify"],
            do=_actions(raw.get("do")), undo=_actions(raw.get("undo")), hint=raw.get("hint", ""),
            description=raw.get("description", ""), requires=list(raw.get("requires", [])),
            retries=raw.get("retries", 0), retry_delay=float(raw.get("retry_delay", 1.0)),
            timeout=raw.get("timeout"), line=loaded.position(("steps", index)).line, tags=list(raw.get("tags", [])),
        )
        for index, raw in enumerate(data["steps"])
    ]
    return Scenario(
        path=path, id=data["id"], title=data["title"], steps=steps, description=data.get("description", ""),
        version=str(data.get("version", "")), vars=dict(data.get("vars", {})), env=dict(data.get("env", {})),
        profiles=dict(data.get("profiles", {})), default_profile=data.get("default_profile"),
    )


def parse_var_overrides(items: list[str]) -> dict[str, str]:
    """`--var k=v` (repeatable) into a mapping."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--var {item!r}: expected NAME=VALUE")
        result[key.strip()] = value
    return result


@dataclass
class BoundScenario:
    """A scenario with a profile chosen and vars rendered for one host."""

    scenario: Scenario
    profile: str | None
    renderer: Renderer
    env: dict[str, str]  # exported before every command on the host

    def render(self, value: Any, *, where: str = "") -> Any:
        return self.renderer.render_data(value, where=where)


def choose_profile(scenario: Scenario, profile: str | None) -> str | None:
    """The profile a run uses: the one asked for, else the scenario's default, else its first."""
    chosen = profile or scenario.default_profile
    if chosen is None and scenario.profiles:
        chosen = next(iter(scenario.profiles))
    if chosen is not None and chosen not in scenario.profiles:
        known = ", ".join(scenario.profiles) or "none"
        raise UsageError(f"unknown profile '{chosen}' in {scenario.path.name} (profiles: {known})")
    return chosen


def bind(scenario: Scenario, *, profile: str | None = None, overrides: Mapping[str, str] | None = None,
         host_facts: Mapping[str, Any] | None = None, host_vars: Mapping[str, Any] | None = None,
         secrets: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None, redactor: Redactor = REDACTOR) -> BoundScenario:
    """Choose the profile, render vars (scenario, then profile, then the host's own, then --var) for one host."""
    chosen = choose_profile(scenario, profile)
    profile_data = scenario.profiles.get(chosen, {}) if chosen else {}
    raw_vars = {**scenario.vars, **profile_data.get("vars", {}), **dict(host_vars or {}), **dict(overrides or {})}
    base = {**dict(host_facts or {}), "profile": chosen or ""}

    def make(values: Mapping[str, Any]) -> Renderer:
        return Renderer(values, environ=environ, secrets=secrets, redactor=redactor)

    values = resolve_vars(raw_vars, base, make)
    renderer = make(values)
    env: dict[str, str] = {}
    if profile_data.get("lab_env"):
        env.update(renderer.globals["lab"].env)
    env.update({k: str(renderer.render(v, where=f"env.{k}")) for k, v in {**scenario.env, **profile_data.get("env", {})}.items()})
    return BoundScenario(scenario=scenario, profile=chosen, renderer=renderer, env=env)
