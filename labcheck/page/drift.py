"""`labcheck lint --page`: where a course page and the scenario that encodes it have drifted apart.

Needs no lab world and no secrets: the scenario is rendered in its `live` profile with every
secret, `lab.*` and `env(…)` value a placeholder that matches any word, and `home` as `$HOME`.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from labcheck.checks.expectations import matches, scalar_text
from labcheck.checks.jsonpath import PathError, split_path
from labcheck.engine.reference.parse import TRANSPORTS
from labcheck.page.model import DocumentedResult, Page, PageCommand
from labcheck.redact import Redactor
from labcheck.scenario.model import Scenario, Step, choose_profile
from labcheck.scenario.render import Renderer, resolve_vars
from labcheck.yamlload import LoadedYaml, Path_, load_yaml

LINT_PROFILE = "live"
CLOSE_MATCH = 0.6  # difflib's ratio for "did you mean"

_PLACEHOLDER = re.compile(r"⟪[^⟫]*⟫")
_SEPARATOR = re.compile(r"\s*(?:&&|\|\||;|\n)\s*")
# The engine's transports, as a reference starts with them (sif:, tarball: and any added later included).
_TRANSPORTS = tuple("docker://" if name == "docker" else f"{name}:" for name in TRANSPORTS)
# Which check verifies the destination of a page's `skopeo copy`, by transport.
_DESTINATION_CHECKS = {
    "docker://": ("registry_image", "ref"),
    "docker-daemon:": ("docker_image", "name"),
    "containers-storage:": ("storage_image", "name"),
    "dir:": ("dir_image", "path"),
}


@dataclass(frozen=True)
class Drift:
    """One disagreement between the page and the scenario, at a line of each."""

    page: str
    page_line: int
    scenario: str
    scenario_line: int
    message: str

    def __str__(self) -> str:
        return f"{self.page}:{self.page_line}: {self.message} ({self.scenario}:{self.scenario_line})"


@dataclass(frozen=True)
class _Binding:
    """A page command the scenario names: in a step's `page:` list, or in `page.replaced`."""

    command: str
    line: int
    step: Step | None  # None: a `replaced` entry

    def owner(self) -> str:
        return f"step '{self.step.id}'" if self.step else "page.replaced"


def page_drift(page: Page, scenario: Scenario) -> list[Drift]:
    """Every drift between page and scenario, in page order."""
    return _DriftLint(page, scenario).run()


# --- rendering without secrets or a lab world ---------------------------------------------------------


def _placeholder(name: str) -> str:
    return f"⟪{name}⟫"


class _PlaceholderLab:
    """`lab.*` as placeholders: lint needs no lab world."""

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return _placeholder(f"lab.{name}")


class _LintRenderer(Renderer):
    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values, environ={}, redactor=Redactor())
        self.globals["lab"] = self.values["lab"] = _PlaceholderLab()

    def secret(self, name: str) -> str:
        return _placeholder(f"secret:{name}")

    def env(self, name: str, default: str | None = None) -> str:
        return _placeholder(f"env:{name}")


def lint_renderer(scenario: Scenario) -> Renderer:
    """The scenario's variables in its `live` profile (else its default), without secrets or lab world."""
    profile = LINT_PROFILE if LINT_PROFILE in scenario.profiles else choose_profile(scenario, None).name
    profile_vars = scenario.profiles.get(profile, {}).get("vars", {}) if profile else {}
    base = {"home": "$HOME", "user": "$USER", "profile": profile or "",
            **{name: _placeholder(name) for name in ("host", "uid", "machine", "xdg_runtime_dir", "arch", "variant")}}
    values = resolve_vars({**scenario.vars, **profile_vars}, base, _LintRenderer)
    return _LintRenderer(values)


def _pattern(rendered: str) -> re.Pattern[str]:
    """A rendered text as a pattern: each placeholder matches any one word."""
    return re.compile(r"\S+".join(re.escape(part) for part in _PLACEHOLDER.split(rendered)))


def same_text(rendered: str, page_text: str) -> bool:
    return _pattern(rendered).fullmatch(page_text) is not None


def _commands(text: str) -> list[str]:
    return [part for part in _SEPARATOR.split(text.strip()) if part]


def encodes(rendered: str, command: str) -> bool:
    """Whether rendered (a hint, a `run:`) holds command verbatim, as whole commands."""
    have, want = _commands(rendered), _commands(command)
    return any(all(same_text(h, w) for h, w in zip(have[i:i + len(want)], want))
               for i in range(len(have) - len(want) + 1)) if want else False


def _shown(text: str) -> str:
    return _PLACEHOLDER.sub(lambda m: f"<{m.group()[1:-1]}>", text)


# --- what a page command says -------------------------------------------------------------------


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _normal_path(path: str) -> str:
    path = path.replace("${HOME}", "$HOME")
    return "$HOME" + path[1:] if path == "~" or path.startswith("~/") else path


def _normal_ref(ref: str) -> str:
    """A reference with its default tag: `fedora` and `fedora:latest` are one image."""
    last = ref.rsplit("/", 1)[-1]
    return ref if "@" in ref or ":" in last else f"{ref}:latest"


def _copy_destination(command: str) -> tuple[str, str] | None:
    """(transport, reference) of a `skopeo copy`'s destination."""
    words = _words(command)
    if words[:2] != ["skopeo", "copy"]:
        return None
    refs = [w for w in words[2:] if w.startswith(_TRANSPORTS)]
    if len(refs) < 2:
        return None
    transport = next(t for t in _TRANSPORTS if refs[1].startswith(t))
    return transport, refs[1][len(transport):]


def _container_name(command: str) -> str | None:
    words = _words(command)
    if len(words) < 3 or words[0] not in ("podman", "docker") or words[1] not in ("run", "create"):
        return None
    for index, word in enumerate(words):
        if word == "--name" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--name="):
            return word.removeprefix("--name=")
    return None


def _stable_values(result: DocumentedResult) -> dict[tuple[str | int, ...], tuple[Any, int]]:
    """The values of a JSON result that the real tools print the same every time: labels,
    Architecture, Os and Env entries, by path (list indexes as ints), with their page lines."""
    found: dict[tuple[str | int, ...], tuple[Any, int]] = {}

    def walk(value: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))
        elif _is_stable(path):
            line = result.key_lines.get(".".join(str(p) for p in path), result.line)
            found[path] = (value, line)

    walk(result.data, ())
    return found


def _is_stable(path: tuple[str | int, ...]) -> bool:
    if not path:
        return False
    if path[-1] in ("Architecture", "Os"):
        return True
    return len(path) >= 2 and (path[-2] == "Labels" and isinstance(path[-1], str)
                               or path[-2] == "Env" and isinstance(path[-1], int))


def _path_text(path: tuple[str | int, ...]) -> str:
    return ".".join(f'"{p}"' if isinstance(p, str) and "." in p else str(p) for p in path)


# --- the lint ---------------------------------------------------------------------------------


class _DriftLint:
    def __init__(self, page: Page, scenario: Scenario) -> None:
        self.page = page
        self.scenario = scenario
        self.loaded: LoadedYaml = load_yaml(scenario.path.read_text())
        self.renderer = lint_renderer(scenario)
        self.redactor = Redactor()
        for credential in page.credentials:
            self.redactor.add(credential)
        self.present = {c.text: c for c in reversed(page.commands)}  # the first of equal commands
        self.bindings = [_Binding(ref.command, ref.line, step) for step in scenario.steps for ref in step.page]
        if scenario.page is not None:
            self.bindings += [_Binding(r.command, r.line, None) for r in scenario.page.replaced]

    def drift(self, page_line: int, scenario_line: int, message: str) -> Drift:
        return Drift(str(self.page.path), page_line, str(self.scenario.path), scenario_line,
                     self.redactor.redact(message))

    def scenario_line(self, path: Path_) -> int:
        return self.loaded.position(path).line

    def run(self) -> list[Drift]:
        found: list[Drift] = []
        stand_ins = self.pair_missing()
        found += self.coverage(stand_ins)
        for step in self.scenario.steps:
            commands = [self.present.get(ref.command) or stand_ins.get((step.id, ref.command)) for ref in step.page]
            for ref, command in zip(step.page, commands):
                if command is not None and ref.command in self.present:
                    found += self.hint_drift(step, command)
                if command is not None:
                    found += self.value_drift(step, command)
        unique = {(d.page_line, d.scenario_line, d.message): d for d in found}
        return sorted(unique.values(), key=lambda d: (d.page_line, d.scenario_line, d.message))

    # commands: encoded, replaced, gone ------------------------------------------------------------

    def pair_missing(self) -> dict[tuple[str | None, str], PageCommand]:
        """Each named command the page no longer has, with the unnamed page command most like it."""
        named = {b.command for b in self.bindings}
        unnamed = [c for c in self.page.commands if c.text not in named]
        pairs: dict[tuple[str | None, str], PageCommand] = {}
        for binding in self.bindings:
            if binding.command in self.present or not unnamed:
                continue
            texts = [c.text for c in unnamed]
            guess = difflib.get_close_matches(binding.command, texts, n=1, cutoff=CLOSE_MATCH)
            if guess:
                match = unnamed.pop(texts.index(guess[0]))
                pairs[(binding.step.id if binding.step else None, binding.command)] = match
        return pairs

    def coverage(self, stand_ins: dict[tuple[str | None, str], PageCommand]) -> Iterator[Drift]:
        paired = {c.text for c in stand_ins.values()}
        named = {b.command for b in self.bindings}
        for index, binding in enumerate(self.bindings):
            if binding.command in self.present:
                continue
            match = stand_ins.get((binding.step.id if binding.step else None, binding.command))
            if match is not None:
                yield self.drift(match.line, binding.line,
                                 f"{binding.owner()} names `{binding.command}`, which the page no longer has; "
                                 f"did you mean `{match.text}`?")
            else:
                line, where = self.expected_place(index)
                yield self.drift(line, binding.line,
                                 f"{binding.owner()} names `{binding.command}`, which the page no longer has "
                                 f"(expected {where})")
        page_line = self.scenario.page.line if self.scenario.page else 1
        for command in self.page.commands:
            if command.text in named or command.text in paired:
                continue
            closest = self.closest_named(command.text)
            yield self.drift(command.line, page_line,
                             f"`{command.text}` is encoded by no step and not declared replaced"
                             + (f"; the closest command the scenario names is {closest}" if closest else ""))

    def expected_place(self, index: int) -> tuple[int, str]:
        """The page line where the index-th binding's command was expected, and a phrase saying so."""
        binding = self.bindings[index]
        same_owner = [(i, b) for i, b in enumerate(self.bindings) if b.step is binding.step and b.command in self.present]
        before = [b for i, b in same_owner if i < index]
        after = [b for i, b in same_owner if i > index]
        if before:
            command = self.present[before[-1].command]
            return command.line, f"after line {command.line}, `{command.text}`"
        if after:
            command = self.present[after[0].command]
            return command.line, f"before line {command.line}, `{command.text}`"
        earlier = [b for b in self.bindings[:index] if b.step is not None and b.command in self.present]
        if binding.step is not None and earlier:
            command = self.present[earlier[-1].command]
            return command.line, f"after line {command.line}, `{command.text}`"
        return 1, "somewhere on the page"

    def closest_named(self, text: str) -> str:
        owners = {b.command: b.owner() for b in self.bindings}
        guess = difflib.get_close_matches(text, list(owners), n=1, cutoff=CLOSE_MATCH)
        return f"`{guess[0]}` ({owners[guess[0]]})" if guess else ""

    # the hint and `run:` actions -------------------------------------------------------------------

    def hint_drift(self, step: Step, command: PageCommand) -> Iterator[Drift]:
        where = ("steps", step.index)
        hint = self.renderer.render(step.hint, where=f"step '{step.id}' hint") if step.hint else ""
        runs = [self.renderer.render(a["run"], where=f"step '{step.id}' do.run")
                for a in step.do if isinstance(a.get("run"), str)]
        if any(encodes(text, command.text) for text in (hint, *runs)):
            return
        segments = [s for text in (hint, *runs) for s in _commands(text)]
        closest = difflib.get_close_matches(command.text, [_shown(s) for s in segments], n=1, cutoff=0.0)
        rendered = f"; its closest command is `{closest[0]}`" if closest else "; it has no hint"
        yield self.drift(command.line, self.scenario_line((*where, "hint") if step.hint else where),
                         f"step '{step.id}' hint (profile {LINT_PROFILE}) does not contain the page's command "
                         f"`{command.text}`{rendered}")

    # values the page documents ----------------------------------------------------------------------

    def checks(self, step: Step, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
        for index, check in enumerate(step.verify):
            if isinstance(check, dict) and isinstance(check.get(name), dict):
                yield index, check[name]

    def render(self, step: Step, value: Any) -> Any:
        return self.renderer.render_data(value, where=f"step '{step.id}' verify")

    def value_drift(self, step: Step, command: PageCommand) -> Iterator[Drift]:
        yield from self.argument_drift(step, command)
        if command.result is not None and command.result.kind == "json" and command.result.data is not None:
            yield from self.json_drift(step, command, command.result)

    def argument_drift(self, step: Step, command: PageCommand) -> Iterator[Drift]:
        destination = _copy_destination(command.text)
        if destination is not None and destination[0] in _DESTINATION_CHECKS:
            transport, reference = destination
            check_name, param = _DESTINATION_CHECKS[transport]
            for index, params in self.checks(step, check_name):
                verified = self.render(step, params.get(param, ""))
                if transport == "dir:":
                    agree = same_text(_normal_path(verified), _normal_path(reference))
                else:
                    agree = same_text(_normal_ref(verified.removeprefix("docker://")), _normal_ref(reference))
                if not agree:
                    yield self.drift(command.line, self.scenario_line(("steps", step.index, "verify", index, check_name, param)),
                                     f"the page copies to {transport}{reference}, but step '{step.id}' verifies "
                                     f"{check_name}.{param} {_shown(verified)}")
        name = _container_name(command.text)
        if name is not None:
            for index, params in self.checks(step, "container"):
                verified = self.render(step, params.get("name", ""))
                if not same_text(verified, name):
                    yield self.drift(command.line, self.scenario_line(("steps", step.index, "verify", index, "container", "name")),
                                     f"the page names the container {name}, but step '{step.id}' verifies "
                                     f"container.name {_shown(verified)}")

    def json_drift(self, step: Step, command: PageCommand, result: DocumentedResult) -> Iterator[Drift]:
        documented = _stable_values(result)
        if not documented:
            return
        json_checks = [(i, p) for i, p in self.checks(step, "command") if isinstance(p.get("json"), dict)]
        by_run = [(i, p) for i, p in json_checks if same_text(self.render(step, p.get("run", "")), command.text)]
        consumers = 0
        for index, params in by_run or json_checks:
            consumers += 1
            yield from self.compare_json(step, command, documented, index, params["json"])
        labels = {path[-1]: value for path, value in documented.items() if path[-2:-1] == ("Labels",)}
        if labels and not json_checks:
            for index, params in self.checks(step, "container"):
                consumers += 1
                yield from self.compare_labels(step, command, result, labels, index, params.get("labels") or {})
        if not consumers:
            yield self.drift(result.line, self.scenario_line(("steps", step.index, "verify")),
                             f"step '{step.id}' verifies none of the values the page shows for `{command.text}` "
                             "(labels, Architecture, Os, Env): add a command check with json: keys")

    def compare_json(self, step: Step, command: PageCommand, documented: dict[tuple[str | int, ...], tuple[Any, int]],
                     index: int, wanted: dict[str, Any]) -> Iterator[Drift]:
        where = ("steps", step.index, "verify", index, "command", "json")
        verified: dict[tuple[str | int, ...], tuple[str, Any]] = {}
        for key, value in wanted.items():
            try:
                path = tuple(split_path(str(key)))
            except PathError:
                continue
            if _is_stable(path):
                verified[path] = (key, self.render(step, value))
        for path, (value, line) in documented.items():
            if path not in verified:
                yield self.drift(line, self.scenario_line(where),
                                 f"the page shows {_path_text(path)}: {scalar_text(value)} for `{command.text}`, "
                                 f"which step '{step.id}' does not verify")
                continue
            key, want = verified[path]
            if not matches(want, value) and not (isinstance(want, str) and same_text(want, scalar_text(value))):
                yield self.drift(line, self.scenario_line((*where, key)),
                                 f"the page shows {_path_text(path)}: {scalar_text(value)}, but step '{step.id}' "
                                 f"verifies {key}: {_shown(scalar_text(want))}")
        for path, (key, want) in verified.items():
            if path not in documented:
                yield self.drift(command.result.line if command.result else command.line, self.scenario_line((*where, key)),
                                 f"step '{step.id}' verifies {key}: {_shown(scalar_text(want))}, which the page "
                                 f"does not show for `{command.text}`")

    def compare_labels(self, step: Step, command: PageCommand, result: DocumentedResult,
                       documented: dict[Any, tuple[Any, int]], index: int, wanted: dict[str, Any]) -> Iterator[Drift]:
        where = ("steps", step.index, "verify", index, "container", "labels")
        rendered = self.render(step, wanted)
        for name, (value, line) in documented.items():
            if name not in rendered:
                yield self.drift(line, self.scenario_line(where),
                                 f"the page shows the label {name}: {scalar_text(value)}, which step '{step.id}' "
                                 "does not verify (container.labels)")
            elif not matches(rendered[name], value):
                yield self.drift(line, self.scenario_line((*where, name)),
                                 f"the page shows the label {name}: {scalar_text(value)}, but step '{step.id}' "
                                 f"verifies container.labels.{name}: {scalar_text(rendered[name])}")
        for name, want in rendered.items():
            if name not in documented:
                yield self.drift(result.line, self.scenario_line((*where, name)),
                                 f"step '{step.id}' verifies the label {name}: {scalar_text(want)}, which the page "
                                 f"does not show for `{command.text}`")
