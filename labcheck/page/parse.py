"""Reading a course page (Markdown with VuePress `::: tabs`) into its shell commands and documented results."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from labcheck.errors import read_named_file
from labcheck.page.jsonlenient import parse_json_leniently
from labcheck.page.model import DocumentedResult, Page, PageCommand, PageError

SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})
CREDENTIAL_OPTIONS = ("--creds", "--src-creds", "--dest-creds")

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_CONTAINER_OPEN = re.compile(r"^\s*:{3,}\s*(?P<name>[A-Za-z][\w-]*)")
_CONTAINER_CLOSE = re.compile(r"^\s*:{3,}\s*$")
_TAB = re.compile(r"^\s*@tab(?::active)?\s+(?P<label>.*?)\s*$")
_RESULT_LABEL = re.compile(r"^Result(?:\s*#\s*(?P<number>\d+))?$", re.IGNORECASE)
_INPUT_LABEL = re.compile(r"^Input(?:\s*#\s*\d+)?$", re.IGNORECASE)
_HEADING = re.compile(r"^(#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
_LANGUAGE = re.compile(r"^\s*(?P<language>[A-Za-z0-9_+-]*)")


@dataclass
class _Block:
    """One fenced code block: its language and its content lines (page line, text)."""

    language: str
    line: int  # the opening fence
    lines: list[tuple[int, str]]


@dataclass
class _Tabs:
    """A `::: tabs` container being read: its Input commands and its Result blocks, in page order."""

    line: int
    commands: list[PageCommand] = field(default_factory=list)
    results: list[tuple[str, int, _Block]] = field(default_factory=list)  # (tab label, tab line, block)


@dataclass
class _Container:
    name: str
    line: int
    tabs: _Tabs | None = None
    tab: str | None = None  # the label of the tab being read
    tab_line: int = 0


def _innermost_tabs(containers: list[_Container]) -> _Container | None:
    return next((c for c in reversed(containers) if c.tabs is not None), None)


def parse_page(path: str | Path) -> Page:
    """The page's shell commands in page order, each with what the page documents it printing.

    PageError (exit 2, one line naming file:line) for a page without any shell command, an
    unterminated fence or an unterminated `::: tabs`.
    """
    path = Path(path)
    text = read_named_file(path, "the page")
    return _Parser(path, text.splitlines()).page()


class _Parser:
    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path = path
        self.lines = lines
        self.commands: list[PageCommand] = []
        self.section = ""
        self.title = ""
        self.first_heading = ""

    def error(self, line: int, message: str) -> PageError:
        return PageError(f"{self.path}:{line}: {message}")

    def page(self) -> Page:
        start = self.read_front_matter()
        containers: list[_Container] = []
        number = start
        while number < len(self.lines):
            text = self.lines[number]
            line = number + 1
            fence = _FENCE.match(text)
            if fence:
                block, number = self.read_block(number, fence)
                self.take_block(block, containers)
                continue
            number += 1
            if _CONTAINER_CLOSE.match(text):
                if containers:
                    self.close(containers.pop())
                continue
            opened = _CONTAINER_OPEN.match(text)
            if opened:
                name = opened.group("name")
                containers.append(_Container(name, line, _Tabs(line) if name == "tabs" else None))
                continue
            tab = _TAB.match(text)
            tabs_container = _innermost_tabs(containers)
            if tab and tabs_container is not None:
                tabs_container.tab, tabs_container.tab_line = tab.group("label"), line
                continue
            heading = _HEADING.match(text)
            if heading:
                self.section = heading.group("text")
                if len(heading.group(1)) == 1 and not self.first_heading:
                    self.first_heading = self.section
        if containers:
            outer = containers[0]
            raise self.error(outer.line, f"unterminated '::: {outer.name}' container (no closing ':::')")
        if not self.commands:
            raise self.error(1, "no shell command on the page (fenced sh, bash, shell or console blocks)")
        return Page(path=self.path, title=self.title or self.first_heading, commands=tuple(self.commands),
                    credentials=credentials_of(self.commands))

    def read_front_matter(self) -> int:
        """The index of the first line after the YAML front matter (0 without one); sets the title."""
        if not self.lines or self.lines[0].strip() != "---":
            return 0
        for index in range(1, len(self.lines)):
            text = self.lines[index]
            if text.strip() == "---":
                return index + 1
            key, sep, value = text.partition(":")
            if sep and key == "title":
                self.title = value.strip().strip("'\"")
        return 0  # no closing `---`: not front matter

    def read_block(self, number: int, fence: re.Match[str]) -> tuple[_Block, int]:
        """The block opened at lines[number], and the index after its closing fence."""
        indent = len(fence.group("indent"))
        marker = fence.group("fence")
        language = _LANGUAGE.match(fence.group("info")).group("language").lower()  # type: ignore[union-attr]
        content: list[tuple[int, str]] = []
        for index in range(number + 1, len(self.lines)):
            text = self.lines[index]
            stripped = text.strip()
            if stripped.startswith(marker[0] * len(marker)) and set(stripped) == {marker[0]}:
                return _Block(language, number + 1, content), index + 1
            content.append((index + 1, text[indent:] if text[:indent].isspace() else text.lstrip()))
        raise self.error(number + 1, f"unterminated code block (no closing {marker})")

    def take_block(self, block: _Block, containers: list[_Container]) -> None:
        container = _innermost_tabs(containers)  # a block in a `::: tip` inside a tab belongs to the tab
        tabs = container.tabs if container else None
        label = container.tab if container else None
        if tabs is not None and label is not None and _RESULT_LABEL.match(label):
            tabs.results.append((label, container.tab_line, block))  # type: ignore[union-attr]
            return
        if block.language not in SHELL_LANGUAGES:
            return
        commands = self.shell_commands(block)
        if tabs is not None and label is not None and _INPUT_LABEL.match(label):
            tabs.commands.extend(commands)
        else:
            self.commands.extend(commands)

    def close(self, container: _Container) -> None:
        tabs = container.tabs
        if tabs is None:
            return
        commands = tabs.commands
        taken: set[int] = set()
        for label, tab_line, block in tabs.results:
            if not commands:
                raise self.error(tab_line, f"a '{label}' tab without an Input tab holding a command")
            number = _RESULT_LABEL.match(label).group("number")  # type: ignore[union-attr]
            index = int(number) - 1 if number else len(commands) - 1
            if not 0 <= index < len(commands):
                raise self.error(tab_line, f"'{label}' but the Input tab holds {len(commands)} command(s)")
            if index in taken:
                continue  # a second block for the same command: the first is what the page documents
            taken.add(index)
            commands[index] = replace(commands[index], result=documented_result(block, label))
        self.commands.extend(commands)

    def shell_commands(self, block: _Block) -> list[PageCommand]:
        """The commands of a shell block; `# ` lines right after a command are its documented output.

        A console block whose lines start with a `$ ` prompt: the prompted lines are commands, the
        others their output.
        """
        prompted = block.language == "console" and any(t.startswith("$ ") for _, t in block.lines)
        commands: list[PageCommand] = []
        output: list[tuple[int, str]] = []
        lines = block.lines
        index = 0

        def finish_output() -> None:
            if commands and output:
                result = DocumentedResult(kind="text", line=output[0][0], lines=tuple(output))
                commands[-1] = replace(commands[-1], result=result)
            output.clear()

        while index < len(lines):
            line, text = lines[index]
            index += 1
            if not text.strip():
                continue
            is_command = text.startswith("$ ") if prompted else not text.lstrip().startswith("#")
            if not is_command:
                if commands:
                    output_text = text if prompted else _uncomment(text)
                    if output_text:
                        output.append((line, output_text))
                continue
            finish_output()
            command = text[2:] if prompted else text
            while command.endswith("\\") and index < len(lines):
                command = command[:-1].rstrip() + " " + lines[index][1].strip()
                index += 1
            commands.append(PageCommand(text=command.strip(), line=line, section=self.section))
        finish_output()
        return commands


def _uncomment(text: str) -> str:
    """An output line as the page shows it, without its `# ` prefix and trailing blanks."""
    text = text.lstrip()
    text = text[2:] if text.startswith("# ") else text[1:]
    return text.rstrip()


def documented_result(block: _Block, label: str) -> DocumentedResult:
    """A Result tab's block: JSON (parsed leniently) or lines of text with their `# ` prefix removed."""
    first = next((n for n, t in block.lines if t.strip()), block.line + 1)
    if block.language == "json":
        lines = tuple((n, t.rstrip()) for n, t in block.lines if t.strip())
        data, key_lines = parse_json_leniently(block.lines)
        return DocumentedResult(kind="json", line=first, lines=lines, data=data, key_lines=key_lines, label=label)
    lines = tuple((n, _uncomment(t)) for n, t in block.lines if _uncomment(t))
    return DocumentedResult(kind="text", line=first, lines=lines, label=label)


def credentials_of(commands: list[PageCommand]) -> tuple[str, ...]:
    """The values of the credential options in the commands, each with its password part."""
    found: dict[str, None] = {}
    for command in commands:
        try:
            words = shlex.split(command.text, comments=False)
        except ValueError:
            words = command.text.split()
        for index, word in enumerate(words):
            option, equals, value = word.partition("=")
            if option not in CREDENTIAL_OPTIONS:
                continue
            if not equals:
                value = words[index + 1] if index + 1 < len(words) else ""
            if not value:
                continue
            found[value] = None
            _, colon, password = value.partition(":")
            if colon and password:
                found[password] = None
    return tuple(found)
