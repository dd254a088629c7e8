"""The scenario format's single definition: a JSON Schema (checks contribute their parameter schemas)."""

from __future__ import annotations

from typing import Any

import labcheck.checks  # noqa: F401  (importing the package registers every check)
from labcheck.checks.base import CHECKS

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
VAR_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
TAG_PATTERN = r"^[a-z][a-z0-9_]*$"  # a pytest marker name: -m selects steps by tag

_scalar = {"type": ["string", "number", "boolean"]}
_template = {"type": "string"}
_creds = {"type": "string", "description": "user:password; use secret('NAME') or lab.dest_creds"}

ACTIONS: dict[str, dict[str, Any]] = {
    "run": {"type": "string", "minLength": 1, "description": "a shell command run on the host as its user"},
    "copy": {
        "type": "object",
        "description": "copy an image, as `skopeo copy` does",
        "properties": {
            "src": _template,
            "dst": _template,
            "src_creds": _creds,
            "dest_creds": _creds,
            "all": {"type": "boolean"},
            "src_tls_verify": {"type": "boolean"},
            "dest_tls_verify": {"type": "boolean"},
        },
        "required": ["src", "dst"],
        "additionalProperties": False,
    },
    "inspect": {
        "type": "object",
        "description": "inspect an image, as `skopeo inspect` does",
        "properties": {"ref": _template, "creds": _creds, "tls_verify": {"type": "boolean"}},
        "required": ["ref"],
        "additionalProperties": False,
    },
    "delete": {
        "type": "object",
        "description": "delete an image from a registry, as `skopeo delete` does (for undo)",
        "properties": {"ref": _template, "creds": _creds},
        "required": ["ref"],
        "additionalProperties": False,
    },
}


def action_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "exactly one of: " + ", ".join(ACTIONS),
        "properties": ACTIONS,
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
    }


def check_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "exactly one check: " + ", ".join(sorted(CHECKS)),
        "properties": {name: spec.params_schema for name, spec in sorted(CHECKS.items())},
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
    }


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file."""
    actions = {"oneOf": [action_schema(), {"type": "array", "items": action_schema(), "minItems": 1}]}
    variables = {
        "type": "object",
        "propertyNames": {"pattern": VAR_NAME_PATTERN},
        "additionalProperties": _scalar,
    }
    env = {"type": "object", "propertyNames": {"pattern": VAR_NAME_PATTERN}, "additionalProperties": _template}
    step = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "title": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "do": actions,
            "verify": {"type": "array", "items": check_schema(), "minItems": 1},
            "hint": {"type": "string"},
            "requires": {"type": "array", "items": {"type": "string", "pattern": ID_PATTERN}, "uniqueItems": True},
            "undo": actions,
            "retries": {"type": "integer", "minimum": 0, "maximum": 100},
            "retry_delay": {"type": "number", "minimum": 0},
            "timeout": {"type": "number", "exclusiveMinimum": 0},
            "leaves_no_trace": {"type": "boolean",
                                "description": "the step changes nothing on the host (a remote inspect): its checks "
                                               "show the host can do it, and verify/check count it done only once a "
                                               "later step is done"},
            "page": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "description": "the course page's commands this step encodes, verbatim",
            },
            "tags": {"type": "array", "items": {"type": "string", "pattern": TAG_PATTERN}, "uniqueItems": True,
                     "description": "pytest markers of the step's items (pytest -m TAG)"},
        },
        "required": ["id", "title", "verify"],
        "additionalProperties": False,
    }
    profile = {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "vars": variables,
            "env": env,
            "lab_env": {"type": "boolean", "description": "export the lab world's environment to commands"},
        },
        "additionalProperties": False,
    }
    replaced = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "minLength": 1, "description": "the page's command, verbatim"},
            "reason": {"type": "string", "minLength": 1, "description": "why the lab world stands in for it"},
        },
        "required": ["command", "reason"],
        "additionalProperties": False,
    }
    page = {
        "type": "object",
        "description": "the course page this scenario encodes (`labcheck lint --page`, `labcheck page run`)",
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "the page, relative to the scenario file"},
            "replaced": {"type": "array", "items": replaced,
                         "description": "page commands that set up what the lab world already provides"},
            "secrets": {"type": "object", "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                        "additionalProperties": {"type": "string", "pattern": "^--?[A-Za-z0-9-]+$"},
                        "description": "secrets the page prints itself, by the command option that carries them "
                                       "(QUAY_CREDS: --dest-creds): `labcheck page run` gives them to the reset "
                                       "that precedes the page"},
        },
        "required": ["path"],
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://labcheck.invalid/scenario.schema.json",
        "title": "labcheck scenario",
        "type": "object",
        "properties": {
            "labcheck": {"const": 1, "description": "marks the file as a labcheck scenario (format 1): "
                         "pytest collects it wherever it lies"},
            "id": {"type": "string", "pattern": ID_PATTERN},
            "title": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "version": {"type": ["string", "integer"]},
            "vars": variables,
            "env": env,
            "profiles": {"type": "object", "propertyNames": {"pattern": ID_PATTERN}, "additionalProperties": profile},
            "default_profile": {"type": "string"},
            "steps": {"type": "array", "items": step, "minItems": 1},
            "page": page,
        },
        "required": ["id", "title", "steps"],
        "additionalProperties": False,
    }
