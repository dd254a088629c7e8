"""`storage_image`: an image is in the host user's container storage (podman) under a name."""

from __future__ import annotations

from labcheck.checks.base import CheckContext, CheckResult, check
from labcheck.checks.digests import registry_problem, source_digests
from labcheck.checks.expectations import label_mismatches, show
from labcheck.checks.names import normalise
from labcheck.checks.schema import CREDS, IMAGE_NAME, LABELS, TRANSPORT_REF, params
from labcheck.checks.tools import inspect_one
from labcheck.checks.trace import Trace
from labcheck.errors import LabcheckError

SCHEMA = params(
    {
        "name": {**IMAGE_NAME, "description": "as podman names it; fedora means docker.io/library/fedora:latest"},
        "same_digest_as": TRANSPORT_REF,
        "same_digest_creds": CREDS,
        "labels": LABELS,
    },
    "name",
)


@check("storage_image", SCHEMA)
def storage_image(
    ctx: CheckContext,
    name: str,
    same_digest_as: str | None = None,
    same_digest_creds: str | None = None,
    labels: dict[str, str] | None = None,
) -> CheckResult:
    """An image is in the host user's podman storage under a name, optionally the same as a source's and with labels."""
    full = normalise(name)
    trace = Trace(ctx, "storage_image", f"containers-storage:{full} exists")
    # The full name, so that podman's short-name resolution cannot pick another registry's image.
    image, problem, absent = inspect_one(trace, "podman", "image", full)
    if image is None:
        if absent:
            return trace.failed(f"there is no image {full} in this user's container storage (podman images)",
                                expected=full, actual="absent")
        return trace.failed(problem, expected=full)
    actual = f"{full} (ID {image.get('Id', '?')[:12]})"
    if labels:
        mismatches = label_mismatches(labels, image.get("Labels") or (image.get("Config") or {}).get("Labels"))
        if mismatches:
            return trace.failed(f"the image {full} in container storage: {'; '.join(mismatches)}",
                                expected=f"labels {show(labels)}", actual=show(image.get("Labels")))
    if same_digest_as:
        known = [image.get("Digest", "")] + [d.partition("@")[2] for d in image.get("RepoDigests") or []]
        known = list(dict.fromkeys(d for d in known if d))
        try:
            source = source_digests(trace, same_digest_as, same_digest_creds)
        except LabcheckError as exc:
            return trace.failed(registry_problem(exc, same_digest_as, same_digest_creds),
                                expected=f"the image of {same_digest_as}")
        if not source.accepts(known):
            return trace.failed(source.mismatch(f"containers-storage:{full}", image.get("Digest", "?")),
                                expected=source.expected(), actual=", ".join(known) or "no digest")
        return trace.passed(expected=source.expected(), actual=", ".join(known))
    return trace.passed(expected=full, actual=actual)
