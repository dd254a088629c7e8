"""Comparing what a scenario expects with what a tool reports, leniently for scalars as YAML writes them."""

from __future__ import annotations

import json
from typing import Any, Mapping


def scalar_text(value: Any) -> str:
    """A scalar as JSON/YAML writes it.

    >>> [scalar_text(v) for v in (True, None, 38, "38")]
    ['true', 'null', '38', '38']
    """
    return value if isinstance(value, str) else json.dumps(value)


def matches(expected: Any, actual: Any) -> bool:
    """Equal, or scalars that read the same (YAML's `version: 38` matches the label "38").

    >>> matches(38, "38"), matches(True, "true"), matches("amd64", "arm64"), matches([1], ["1"])
    (True, True, False, False)
    """
    if expected == actual and type(expected) is type(actual):
        return True
    if isinstance(expected, (dict, list)) or isinstance(actual, (dict, list)):
        return expected == actual
    return scalar_text(expected) == scalar_text(actual)


def label_mismatches(expected: Mapping[str, Any], actual: Mapping[str, str] | None) -> list[str]:
    """One phrase per expected label the image lacks or has with another value.

    >>> label_mismatches({"vendor": "Fedora Project", "version": 40}, {"vendor": "Fedora Project", "version": "38"})
    ['label version is "38", not "40"']
    >>> label_mismatches({"name": "fedora"}, None)
    ['label name is missing']
    """
    actual = actual or {}
    problems = []
    for key, want in expected.items():
        if key not in actual:
            problems.append(f"label {key} is missing")
        elif not matches(want, actual[key]):
            problems.append(f'label {key} is "{actual[key]}", not "{scalar_text(want)}"')
    return problems


def show(value: Any) -> str:
    """A short one-line rendering of a value for expected/actual.

    >>> show({"vendor": "Fedora Project"})
    '{"vendor": "Fedora Project"}'
    """
    return scalar_text(value) if not isinstance(value, (dict, list)) else json.dumps(value, sort_keys=True)
