"""Does a command's output agree with what the page documents? Names and stable values, not sizes or IDs.

JSON results: the stable keys the page shows (STABLE_PATHS) are compared; a documented list must be
contained in the actual one; values that differ on every machine and every run (a `…`, a digest, an
ID, a date) never fail. Text results: every line the page shows must appear, with IDs as wildcards
and a progress line's terminal-only status (`done`, `skipped: already exists`) left out; `ls -l` rows
are compared by file name, `docker images` rows by repository and tag, and environment notices
(`INFO[0000] …`) are skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from labcheck.page.model import DocumentedResult, PageCommand

# Dotted paths (list indexes left out) of the values a page's JSON result documents for good:
# an image's name, labels, platform and environment; a container's name, command, state and image.
STABLE_PATHS = frozenset({
    "Name", "Labels", "Architecture", "Os", "Env",
    "Path", "Args", "ImageName", "State.Status", "State.Running",
    "Config.Labels", "Config.Env", "Config.Cmd", "Config.Image",
})
_HEX_RUN = re.compile(r"(?:sha256:)?[0-9a-f]{7,}")
_VOLATILE = re.compile(
    r"^(?:sha256:)?[0-9a-f]{12,}$"  # a digest or an ID
    r"|[0-9a-f]{12,}"  # a value carrying one (HOSTNAME=a83dd382c16d)
    r"|^\d{4}-\d\d-\d\dT\d\d:\d\d"  # a date
    r"|\.\.\.|…"
)
_NOTICE = re.compile(r"^(?:INFO|WARN|WARNING|DEBU|ERRO)\[\d+\]")
_LS_ROW = re.compile(r"^[-dlcbps][-rwxsStT]{9}[.+@]?\s+\d+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(?P<name>.+)$")
_PROGRESS = re.compile(r"^(Copying (?:blob|config)) \S+")


@dataclass(frozen=True)
class Mismatch:
    """One documented value or line the output does not show."""

    line: int  # the page line that documents it
    what: str  # `Labels.vendor`, or the documented line
    expected: str
    actual: str


def compare_output(command: PageCommand, stdout: str, stderr: str) -> list[Mismatch]:
    """Mismatches between what the command printed and what the page documents for it."""
    result = command.result
    if result is None:
        return []
    if result.kind == "json":
        return compare_json(result, stdout)
    return compare_text(result, f"{stdout}\n{stderr}", command=command.text)


def is_volatile(value: Any) -> bool:
    return isinstance(value, str) and bool(_VOLATILE.search(value))


def compare_json(result: DocumentedResult, stdout: str) -> list[Mismatch]:
    if result.data is None:
        return []
    try:
        actual = json.loads(stdout)
    except ValueError:
        return [Mismatch(result.line, "JSON output", "a JSON document", _first_line(stdout) or "(no output)")]
    mismatches: list[Mismatch] = []
    _walk(result.data, actual, (), result, mismatches)
    return mismatches


def _walk(documented: Any, actual: Any, path: tuple[str, ...], result: DocumentedResult,
          out: list[Mismatch]) -> None:
    """Find the stable paths inside documented, and compare each with the same place in actual."""
    key = ".".join(p for p in path if not p.isdigit())
    if key in STABLE_PATHS:
        _compare_value(documented, actual, path, result, out)
        return
    if isinstance(documented, dict) and isinstance(actual, dict):
        for name, value in documented.items():
            if name in actual:
                _walk(value, actual[name], (*path, name), result, out)
            elif _holds_stable(value, (*path, name)):
                out.append(Mismatch(_line_of(result, (*path, name)), ".".join((*path, name)),
                                    _show(value), "(missing)"))
    elif isinstance(documented, list) and isinstance(actual, list):
        for index, value in enumerate(documented):
            if index < len(actual):
                _walk(value, actual[index], (*path, str(index)), result, out)


def _holds_stable(value: Any, path: tuple[str, ...]) -> bool:
    key = ".".join(p for p in path if not p.isdigit())
    if key in STABLE_PATHS:
        return True
    if isinstance(value, dict):
        return any(_holds_stable(v, (*path, k)) for k, v in value.items())
    return False


def _compare_value(documented: Any, actual: Any, path: tuple[str, ...], result: DocumentedResult,
                   out: list[Mismatch]) -> None:
    where = ".".join(p for p in path if not p.isdigit())
    if isinstance(documented, dict):
        actual_dict = actual if isinstance(actual, dict) else {}
        for name, value in documented.items():
            if is_volatile(value):
                continue
            if name not in actual_dict or str(actual_dict[name]) != str(value):
                out.append(Mismatch(_line_of(result, (*path, name)), f"{where}.{name}", _show(value),
                                    _show(actual_dict.get(name, "(missing)"))))
    elif isinstance(documented, list):
        actual_items = {_show(item) for item in actual} if isinstance(actual, list) else set()
        for index, value in enumerate(documented):
            if is_volatile(value) or isinstance(value, (dict, list)):
                continue
            if _show(value) not in actual_items:
                out.append(Mismatch(_line_of(result, (*path, str(index))), f"{where} item", _show(value),
                                    ", ".join(sorted(actual_items)) or "(none)"))
    elif not is_volatile(documented) and _show(documented) != _show(actual):
        out.append(Mismatch(_line_of(result, path), where, _show(documented), _show(actual)))


def _line_of(result: DocumentedResult, path: tuple[str, ...]) -> int:
    for end in range(len(path), 0, -1):
        line = result.key_lines.get(".".join(path[:end]))
        if line is not None:
            return line
    return result.line


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def compare_text(result: DocumentedResult, output: str, *, command: str = "") -> list[Mismatch]:
    actual_lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    docker_images = "docker images" in command or "podman images" in command
    mismatches = []
    for line, text in result.lines:
        text = text.rstrip()
        if not text.strip() or _NOTICE.match(text) or re.match(r"^total \S+$", text):
            continue
        found = _find(text, actual_lines, docker_images=docker_images)
        if not found:
            mismatches.append(Mismatch(line, text, text, _closest(text, actual_lines)))
    return mismatches


def _find(text: str, actual_lines: list[str], *, docker_images: bool) -> bool:
    ls_row = _LS_ROW.match(text)
    if ls_row:
        name = ls_row.group("name")
        if is_volatile(name):
            return True  # a blob's file name is its digest: the page's image, not this one
        names = {m.group("name") for m in map(_LS_ROW.match, actual_lines) if m}
        return name in names
    if docker_images:
        wanted = text.split()[:2]
        return any(line.split()[:2] == wanted for line in actual_lines)
    progress = _PROGRESS.match(text)
    if progress:  # the status after the ID is drawn only on a terminal
        pattern = re.escape(progress.group(1)) + r" " + _HEX_RUN.pattern
        return any(re.match(pattern, line) for line in actual_lines)
    pattern = _line_pattern(text.strip())
    return any(re.fullmatch(pattern, line.strip()) for line in actual_lines)


def _line_pattern(text: str) -> str:
    """The documented line as a pattern: IDs and digests match any ID, the rest literally."""
    parts, last = [], 0
    for match in _HEX_RUN.finditer(text):
        parts += [re.escape(text[last:match.start()]), _HEX_RUN.pattern]
        last = match.end()
    parts.append(re.escape(text[last:]))
    return "".join(parts)


def _closest(text: str, actual_lines: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(text, actual_lines, n=1, cutoff=0.5)
    return close[0] if close else "(not printed)"


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")
