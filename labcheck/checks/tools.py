"""Asking podman and docker on the host about images and containers, as JSON."""

from __future__ import annotations

import json
from typing import Any

from labcheck.checks.trace import Trace, last_line, missing_tool

NOT_FOUND_MARKERS = ("image not known", "no such image", "no such container", "no such object",
                     "not known", "no container with name or id")


def inspect_one(trace: Trace, tool: str, kind: str, name: str) -> tuple[dict[str, Any] | None, str, bool]:
    """(`tool kind inspect name`'s object, reason it failed, whether it failed because name is absent)."""
    result = trace.run(f"{tool} {kind} inspect -- %s", name)
    if result.rc != 0:
        missing = missing_tool(result, tool)
        if missing:
            return None, missing, False
        error = last_line(result.stderr)
        if any(marker in error.lower() for marker in NOT_FOUND_MARKERS):
            return None, error, True
        return None, f"`{tool} {kind} inspect` failed: {_explain(tool, error)}", False
    try:
        found = json.loads(result.stdout)
    except ValueError:
        return None, f"`{tool} {kind} inspect` did not print JSON", False
    if isinstance(found, list):
        found = found[0] if found else None
    if not isinstance(found, dict):
        return None, f"`{tool} {kind} inspect` printed nothing about {name}", True
    return found, "", False


def _explain(tool: str, error: str) -> str:
    """The tool's error, with what a student can do about the usual daemon problems."""
    if tool == "docker" and "Cannot connect to the Docker daemon" in error:
        return f"{error} (is the Docker service running?)"
    if tool == "docker" and "permission denied" in error.lower():
        return f"{error} (this user may not use Docker: add it to the docker group or use sudo)"
    return error
