"""Asking podman and docker on the host about images and containers, as JSON."""

from __future__ import annotations

import json
import re
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
        explained = _explain(tool, error)
        return None, explained if explained != error else f"`{tool} {kind} inspect` failed: {error}", False
    try:
        found = json.loads(result.stdout)
    except ValueError:
        return None, f"`{tool} {kind} inspect` did not print JSON", False
    if isinstance(found, list):
        found = found[0] if found else None
    if not isinstance(found, dict):
        return None, f"`{tool} {kind} inspect` printed nothing about {name}", True
    return found, "", False


def docker_is_not_docker(trace: Trace) -> str | None:
    """Why `docker` on the host cannot show a Docker engine's images, or None when it can tell nothing
    against it: podman's Docker emulation (podman-docker) answers from podman's own store, so a
    comparison with podman would pass whatever the student did."""
    result = trace.run("docker --version")
    if result.rc != 0:
        return missing_tool(result, "docker")
    if result.stdout.strip().lower().startswith("podman"):
        return ("`docker` on this host is podman (podman-docker's emulation), not a Docker engine: there is no "
                "Docker to move the image to, so this step cannot be checked here (install Docker CE or moby-engine "
                "and start it)")
    return None


def _explain(tool: str, error: str) -> str:
    """The tool's error as a sentence that says what a student can do about the usual daemon problems.

    >>> _explain("docker", "Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?")
    'no Docker daemon answers at unix:///x.sock: start Docker (systemctl start docker) or point DOCKER_HOST at a running one'
    """
    socket = re.search(r"(?:unix|tcp)://[^\s:]+(?::\d+)?", error)
    where = f" at {socket.group(0).rstrip('.')}" if socket else ""
    if tool == "docker" and "Cannot connect to the Docker daemon" in error:
        return (f"no Docker daemon answers{where}: start Docker (systemctl start docker) "
                "or point DOCKER_HOST at a running one")
    if tool == "docker" and "permission denied" in error.lower():
        return (f"this user may not use the Docker daemon{where}: add them to its group "
                "(gpasswd -a USER docker), then log in again")
    return error
