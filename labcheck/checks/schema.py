"""JSON Schema pieces the checks' parameter schemas share."""

from __future__ import annotations

from typing import Any

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
IMAGE_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": r"^[^\s:/][^\s]*$"}
TRANSPORT_REF: dict[str, Any] = {
    "type": "string",
    "pattern": r"^(docker|dir|oci|docker-archive|oci-archive|docker-daemon|containers-storage):\S+$",
    "description": "an image reference in skopeo's transport:reference syntax",
}
DOCKER_REF: dict[str, Any] = {"type": "string", "pattern": r"^docker://\S+$"}
CREDS: dict[str, Any] = {
    "type": "string",
    "pattern": "^[^:]+:",
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
