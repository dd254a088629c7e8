"""Which scenario encodes a page: the page commands it declares replaced, and the secrets the page itself prints."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from labcheck.errors import UsageError
from labcheck.page.model import Page
from labcheck.scenario.model import Scenario, ScenarioError, load_scenario


@dataclass(frozen=True)
class Binding:
    scenario: Scenario
    replaced: dict[str, str]  # page command → why the lab world stands in for it
    secret_options: dict[str, str] = field(default_factory=dict)  # secret name → the page option holding it

    @property
    def scenario_path(self) -> Path:
        return self.scenario.path

    def secrets(self, page: Page) -> dict[str, str]:
        """Each secret the scenario names in `page.secrets`, with its value from the page's own commands."""
        found = {}
        for name, option in self.secret_options.items():
            value = option_value(page, option)
            if value is not None:
                found[name] = value
        return found


def option_value(page: Page, option: str) -> str | None:
    """The value of the first `option VALUE` or `option=VALUE` in the page's commands."""
    for command in page.commands:
        try:
            words = shlex.split(command.text)
        except ValueError:
            continue
        for index, word in enumerate(words):
            if word == option and index + 1 < len(words):
                return words[index + 1]
            if word.startswith(option + "="):
                return word.split("=", 1)[1]
    return None


def bind_page(scenario: Scenario) -> Binding:
    binding = scenario.page
    if binding is None:
        raise UsageError(f"{scenario.path} names no page (its `page:` is missing)")
    return Binding(scenario, {r.command: r.reason for r in binding.replaced},
                   dict(binding.secrets))


def find_binding(page: Page, scenario_path: str | None) -> Binding | None:
    """The scenario given, else the first scenario beside the course (scenarios/*.yaml) whose page is this one."""
    if scenario_path is not None:
        path = Path(scenario_path)
        if not path.is_file():
            raise UsageError(f"no scenario file {path}")
        scenario = load_scenario(path)
        if scenario.page is None or scenario.page.path.resolve() != page.path.resolve():
            raise UsageError(f"{path} does not encode {page.path} (its page: names "
                             f"{scenario.page.path if scenario.page else 'nothing'})")
        return bind_page(scenario)
    for directory in _scenario_dirs(page.path):
        for candidate in sorted(directory.glob("*.y*ml")):
            try:
                scenario = load_scenario(candidate)
            except ScenarioError:
                continue
            if scenario.page is not None and scenario.page.path.resolve() == page.path.resolve():
                return bind_page(scenario)
    return None


def _scenario_dirs(page_path: Path) -> list[Path]:
    candidates = [page_path.resolve().parent.parent / "scenarios", Path.cwd() / "scenarios"]
    return [d for d in dict.fromkeys(candidates) if d.is_dir()]
