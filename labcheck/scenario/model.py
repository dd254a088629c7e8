"""Scenario files as objects: load (lint first), choose a profile, render per host."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from labcheck.errors import UsageError
from labcheck.labenv.userenv import for_user
from labcheck.redact import REDACTOR, Redactor
from labcheck.scenario.lint import Problem, lint_file
from labcheck.scenario.render import LabInfo, Renderer, resolve_vars
from labcheck.yamlload import LoadedYaml, load_yaml


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
class PageRef:
    """A course page command a step encodes, verbatim, and the scenario line that names it."""

    command: str
    line: int


@dataclass(frozen=True)
class ReplacedCommand:
    """A page command the lab world stands in for (the Docker CE install, `exit`), and why."""

    command: str
    reason: str
    line: int


@dataclass(frozen=True)
class PageBinding:
    """The scenario's `page:`: the course page it encodes and the page commands it replaces."""

    path: Path  # resolved against the scenario file's directory
    line: int
    replaced: tuple[ReplacedCommand, ...] = ()
    secrets: dict[str, str] = field(default_factory=dict)  # secret name → the page's option that carries it


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
    page: tuple[PageRef, ...] = ()  # the page commands this step encodes
    leaves_no_trace: bool = False  # done, for verify/check, only once a later step is done
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
    page: PageBinding | None = None

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
            timeout=raw.get("timeout"), line=loaded.position(("steps", index)).line,
            leaves_no_trace=bool(raw.get("leaves_no_trace", False)),
            page=tuple(PageRef(command, loaded.position(("steps", index, "page", n)).line)
                       for n, command in enumerate(raw.get("page", []))),
            tags=list(raw.get("tags", [])),
        )
        for index, raw in enumerate(data["steps"])
    ]
    return Scenario(
        path=path, id=data["id"], title=data["title"], steps=steps, description=data.get("description", ""),
        version=str(data.get("version", "")), vars=dict(data.get("vars", {})), env=dict(data.get("env", {})),
        profiles=dict(data.get("profiles", {})), default_profile=data.get("default_profile"),
        page=_page_binding(path, data.get("page"), loaded),
    )


def _page_binding(path: Path, raw: dict[str, Any] | None, loaded: LoadedYaml) -> PageBinding | None:
    if raw is None:
        return None
    replaced = tuple(
        ReplacedCommand(item["command"], item["reason"], loaded.position(("page", "replaced", n, "command")).line)
        for n, item in enumerate(raw.get("replaced", []))
    )
    return PageBinding(path=path.parent / raw["path"], line=loaded.position(("page", "__key__")).line,
                       replaced=replaced, secrets=dict(raw.get("secrets", {})))


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
    profile_why: str = ""  # why this profile, when it was not asked for with --profile

    def render(self, value: Any, *, where: str = "") -> Any:
        return self.renderer.render_data(value, where=where)


@dataclass(frozen=True)
class ProfileChoice:
    name: str | None
    why: str = ""  # "" when asked for


def choose_profile(scenario: Scenario, profile: str | None, *,
                   lab_world: Callable[[], str | None] = lambda: None) -> ProfileChoice:
    """The profile a run uses on a host: the one asked for; else the one that fits the host — among
    profiles that need a lab world (`lab_env`) and profiles that do not, the default_profile if it
    fits, else the first that does — when the scenario has both kinds; else the default, else the first.

    lab_world() says where the host's lab world is (None: it has none); it is asked only when it matters.
    """
    def known(name: str) -> str:
        if name not in scenario.profiles:
            listed = ", ".join(scenario.profiles) or "none"
            raise UsageError(f"unknown profile '{name}' in {scenario.path.name} (profiles: {listed})")
        return name

    if profile:
        return ProfileChoice(known(profile))
    if not scenario.profiles:
        return ProfileChoice(known(scenario.default_profile) if scenario.default_profile else None)
    default = known(scenario.default_profile or next(iter(scenario.profiles)))
    needing = [name for name, data in scenario.profiles.items() if data.get("lab_env")]
    others = [name for name in scenario.profiles if name not in needing]
    if not needing or not others:
        return ProfileChoice(default)
    where = lab_world()
    fitting = needing if where else others
    chosen = default if default in fitting else fitting[0]
    why = f"found {where}" if where else "found no lab world (labcheck lab up starts one; --profile chooses)"
    return ProfileChoice(chosen, why)


def bind(scenario: Scenario, *, profile: str | None = None, overrides: Mapping[str, str] | None = None,
         host_facts: Mapping[str, Any] | None = None, host_vars: Mapping[str, Any] | None = None,
         secrets: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None,
         redactor: Redactor = REDACTOR, lab: LabInfo | None = None) -> BoundScenario:
    """Choose the profile, render vars (scenario, then profile, then the host's own, then --var) for one host.

    lab is the lab world the host sees (default: the one of environ, on this machine)."""
    lab = lab if lab is not None else LabInfo(dict(os.environ if environ is None else environ), redactor)
    choice = choose_profile(scenario, profile, lab_world=lab.where)
    chosen = choice.name
    profile_data = scenario.profiles.get(chosen, {}) if chosen else {}
    raw_vars = {**scenario.vars, **profile_data.get("vars", {}), **dict(host_vars or {}), **dict(overrides or {})}
    base = {**dict(host_facts or {}), "profile": chosen or ""}

    def make(values: Mapping[str, Any]) -> Renderer:
        return Renderer(values, environ=environ, secrets=secrets, redactor=redactor, lab=lab)

    values = resolve_vars(raw_vars, base, make)
    renderer = make(values)
    env: dict[str, str] = {}
    if profile_data.get("lab_env"):
        facts = dict(host_facts or {})
        # A non-root user shares the lab world's registries, CA and Docker, never root's image store.
        env.update(for_user(lab.env, uid=str(facts.get("uid", "")), runtime_dir=str(facts.get("runtime_dir", "")),
                            session_runtime_dir=str(facts.get("xdg_runtime_dir", ""))))
    env.update({k: str(renderer.render(v, where=f"env.{k}")) for k, v in {**scenario.env, **profile_data.get("env", {})}.items()})
    return BoundScenario(scenario=scenario, profile=chosen, renderer=renderer, env=env, profile_why=choice.why)
