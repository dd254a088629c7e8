"""JSON Schema pieces the checks' parameter schemas share."""

from __future__ import annotations

import re
from typing import Any

from labcheck.engine.reference.parse import TRANSPORTS


def templated(pattern: str) -> str:
    """A regex for values matching pattern, or holding a jinja2 `{{ … }}` the linter sees unrendered.

    >>> import re
    >>> [bool(re.match(templated(r"^docker://\\S+$"), v)) for v in ("docker://q/f", "docker://{{ dest }}/f", "q/f")]
    [True, True, False]
    """
    return rf"^(?:.*\{{\{{.*\}}\}}.*$|{pattern.removeprefix('^')})"


TEXT_OR_LIST: dict[str, Any] = {
    "oneOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}
LABELS: dict[str, Any] = {
    "type": "object",
    "description": "labels the image must have, with these values",
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}
IMAGE_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": templated(r"^[^\s:/][^\s]*$")}
TRANSPORT_REF: dict[str, Any] = {
    "type": "string",
    "pattern": templated(rf"^({'|'.join(re.escape(name) for name in TRANSPORTS)}):\S+$"),
    "description": "an image reference in skopeo's transport:reference syntax",
}
DOCKER_REF: dict[str, Any] = {"type": "string", "pattern": templated(r"^docker://\S+$")}
CREDS: dict[str, Any] = {
    "type": "string",
    "pattern": templated("^[^:]+:"),
    "description": "user:password, given to the engine, never to a command line",
}


def params(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """An object schema with exactly these properties.

    >>> params({"path": {"type": "string"}}, "path")["additionalProperties"]
    False
    """
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def as_list(value: str | list[str] | None) -> list[str]:
    """A str-or-list parameter as a list.

    >>> as_list("a"), as_list(["a", "b"]), as_list(None)
    (['a'], ['a', 'b'], [])
    """
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
