"""JSON as course pages show it: an opening `{` left out, `...` for elided elements, commas missing or extra.

Each key is recorded with its page line, by dotted path (`Labels.vendor`, `0.Config.Env.1`).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<word>true|false|null)
      | (?P<ellipsis>\.\.\.|…)
      | (?P<punct>[{}\[\],:])""",
    re.VERBOSE,
)
_WORDS = {"true": True, "false": False, "null": None}


class _Unreadable(Exception):
    pass


def _tokens(lines: Iterable[tuple[int, str]]) -> list[tuple[str, str, int]]:
    """(kind, text, page line) of every token; _Unreadable at anything JSON does not have."""
    tokens = []
    for line, text in lines:
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if not match:
                raise _Unreadable(f"line {line}: unexpected {text[position:position + 10]!r}")
            kind = match.lastgroup or ""
            if kind != "space":
                tokens.append((kind, match.group(), line))
            position = match.end()
    return tokens


class _Reader:
    def __init__(self, tokens: list[tuple[str, str, int]]) -> None:
        self.tokens = tokens
        self.index = 0
        self.key_lines: dict[str, int] = {}

    def peek(self, offset: int = 0) -> tuple[str, str, int] | None:
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def is_punct(self, text: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token[0] == "punct" and token[1] == text

    def skip_separators(self) -> None:
        while (token := self.peek()) is not None and (token[0] == "ellipsis" or token[1] == ","):
            self.index += 1

    def document(self) -> Any:
        if self.peek() is not None and self.peek()[0] == "string" and self.is_punct(":", 1):  # type: ignore[index]
            value = self.members((), implicit=True)  # the page left out the opening `{`
        else:
            value = self.value(())
        return value

    def value(self, path: tuple[str, ...]) -> Any:
        token = self.peek()
        if token is None:
            raise _Unreadable("the document ends early")
        kind, text, line = token
        if path and path[-1].isdigit():
            self.key_lines.setdefault(".".join(path), line)
        self.index += 1
        if kind == "string":
            return json.loads(text)
        if kind == "number":
            return json.loads(text)
        if kind == "word":
            return _WORDS[text]
        if text == "{":
            return self.members(path, implicit=False)
        if text == "[":
            return self.elements(path)
        raise _Unreadable(f"line {line}: unexpected {text!r}")

    def members(self, path: tuple[str, ...], *, implicit: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while True:
            self.skip_separators()
            token = self.peek()
            if token is None:
                return result  # an unclosed mapping: the page cut the document short
            kind, text, line = token
            if text == "}":
                self.index += 1
                return result
            if kind != "string" or not self.is_punct(":", 1):
                raise _Unreadable(f"line {line}: expected a key, found {text!r}")
            key = json.loads(text)
            self.index += 2
            key_path = (*path, key)
            self.key_lines[".".join(key_path)] = line
            result[key] = self.value(key_path)

    def elements(self, path: tuple[str, ...]) -> list[Any]:
        result: list[Any] = []
        while True:
            self.skip_separators()
            token = self.peek()
            if token is None:
                return result
            if token[1] == "]":
                self.index += 1
                return result
            result.append(self.value((*path, str(len(result)))))


def parse_json_leniently(lines: Iterable[tuple[int, str]]) -> tuple[Any, dict[str, int]]:
    """The document (None when even a lenient reading fails) and the page line of each key path.

    An elided element (`...`) is left out of its list; the elements after it are numbered on.
    """
    try:
        reader = _Reader(_tokens(lines))
        if not reader.tokens:
            return None, {}
        return reader.document(), reader.key_lines
    except _Unreadable:
        return None, {}
