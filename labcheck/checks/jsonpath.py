"""Dotted paths into JSON documents: `Labels.vendor`, `0.State.Running`, `Labels."org.opencontainers.x"`."""

from __future__ import annotations

import re
from typing import Any

_SEGMENT = re.compile(r'"((?:[^"\\]|\\.)*)"|\[(\d+)\]|([^.\[\]"]+)')


class PathError(ValueError):
    """A path that does not lead to a value in the document."""


def split_path(path: str) -> list[str | int]:
    """The segments of a dotted path; digits (or [n]) index lists, quotes keep dots in keys.

    >>> split_path('Labels."org.opencontainers.image.title"')
    ['Labels', 'org.opencontainers.image.title']
    >>> split_path("[0].State.Running")
    [0, 'State', 'Running']
    >>> split_path("RepoTags.1")
    ['RepoTags', 1]
    """
    segments: list[str | int] = []
    position = 0
    while position < len(path):
        if path[position] == "." and segments:
            position += 1
        match = _SEGMENT.match(path, position)
        if match is None:
            raise PathError(f"cannot read the path {path!r} at character {position + 1}")
        quoted, bracketed, plain = match.groups()
        if quoted is not None:
            segments.append(quoted.replace('\\"', '"'))
        elif bracketed is not None:
            segments.append(int(bracketed))
        else:
            segments.append(int(plain) if plain.isdigit() else plain)
        position = match.end()
    if not segments:
        raise PathError("an empty path names no value")
    return segments


def lookup(document: Any, path: str) -> Any:
    """The value at path in document, or PathError naming where the path stops.

    >>> lookup({"Labels": {"vendor": "Fedora Project"}}, "Labels.vendor")
    'Fedora Project'
    >>> lookup([{"State": {"Running": True}}], "0.State.Running")
    True
    """
    value = document
    walked: list[str] = []
    for segment in split_path(path):
        if isinstance(segment, int) and isinstance(value, list):
            if segment >= len(value):
                raise PathError(f"{'.'.join(walked) or 'the document'} has only {len(value)} entries")
            value = value[segment]
        elif isinstance(value, dict) and str(segment) in value:
            value = value[str(segment)]
        else:
            where = ".".join(walked) or "the document"
            raise PathError(f"{where} has no {segment!r}")
        walked.append(str(segment))
    return value
