"""`container`: a podman container exists on the host, optionally running, from an image, with labels."""

from __future__ import annotations

from labcheck.checks.base import CheckContext, CheckResult, check
from labcheck.checks.expectations import label_mismatches, show
from labcheck.checks.names import normalise, same_name
from labcheck.checks.schema import IMAGE_NAME, LABELS, params
from labcheck.checks.tools import inspect_one
from labcheck.checks.trace import Trace

SCHEMA = params(
    {
        "name": {"type": "string", "minLength": 1},
        "running": {"type": "boolean"},
        "image": {**IMAGE_NAME, "description": "the image it runs, as podman reports ImageName (normalised)"},
        "labels": LABELS,
    },
    "name",
)


@check("container", SCHEMA)
def container(
    ctx: CheckContext,
    name: str,
    running: bool | None = None,
    image: str | None = None,
    labels: dict[str, str] | None = None,
) -> CheckResult:
    """A podman container exists by name; optionally running, from an image, with labels."""
    trace = Trace(ctx, "container", f"podman container {name} exists")
    found, problem, absent = inspect_one(trace, "podman", "container", name)
    if found is None:
        if absent:
            return trace.failed(f"there is no podman container named {name} (podman ps -a)",
                                expected=f"container {name}", actual="absent")
        return trace.failed(problem, expected=f"container {name}")
    state = found.get("State") or {}
    status = state.get("Status", "unknown")
    if running is not None and bool(state.get("Running")) != running:
        want = "running" if running else "not running"
        return trace.failed(f"the container {name} is {status}, expected {want}", expected=want, actual=status)
    image_name = found.get("ImageName", "")
    if image is not None and not same_name(image, image_name):
        return trace.failed(f"the container {name} runs {image_name or 'an unnamed image'}, not {normalise(image)}",
                            expected=normalise(image), actual=image_name)
    if labels:
        mismatches = label_mismatches(labels, (found.get("Config") or {}).get("Labels"))
        if mismatches:
            return trace.failed(f"the container {name}: {'; '.join(mismatches)}", expected=f"labels {show(labels)}",
                                actual=show((found.get("Config") or {}).get("Labels")))
    return trace.passed(expected=f"container {name}", actual=f"container {name}, {status}, image {image_name}")
