"""The small part of Go's text/template that `skopeo inspect --format` uses: {{.Field}} and {{.Field.key}}."""

from __future__ import annotations

import re

from typing import Any

from labcheck.errors import UsageError

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")


def go_value(value: Any, *, time_field: bool = False) -> str:
    """A value as Go's fmt %v prints it."""
    if value is None:
        return "<nil>" if not time_field else "<nil>"
    if time_field and isinstance(value, str):
        return _go_time_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _go_time_string(text: str) -> str:
    """time.Time.String(): `2006-01-02 15:04:05.999999999 -0700 MST`."""
    m = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", text)
    if not m:
        return text
    date, clock, frac, zone = m.groups()
    offset = "+0000" if zone == "Z" else zone.replace(":", "")
    name = "UTC" if zone == "Z" else offset
    return f"{date} {clock}{frac or ''} {offset} {name}"


def render(template: str, data: dict[str, Any]) -> str:
    def substitute(match: re.Match[str]) -> str:
        expr = match.group(1)
        if not expr.startswith("."):
            raise UsageError(f"template: unsupported action {{{{{expr}}}}}", hint="only {{.Field}} is supported")
        value: Any = data
        parts = [p for p in expr[1:].split(".") if p]
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                if isinstance(value, dict) and value is not data:
                    return "<no value>"
                raise UsageError(f"template: can't evaluate field {part}")
            value = value[part]
        return go_value(value, time_field=parts == ["Created"])

    return _ACTION.sub(substitute, template)



