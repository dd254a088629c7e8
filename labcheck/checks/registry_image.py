"""`registry_image`: a registry holds an image at a docker:// reference, asked through labcheck's engine."""

from __future__ import annotations

from typing import Any

from labcheck.checks.base import CheckContext, CheckResult, check
from labcheck.checks.digests import registry_problem, source_digests
from labcheck.checks.expectations import label_mismatches, matches, show
from labcheck.checks.schema import CREDS, DOCKER_REF, LABELS, TRANSPORT_REF, params
from labcheck.checks.trace import Trace
from labcheck.errors import LabcheckError

SCHEMA = params(
    {
        "ref": DOCKER_REF,
        "creds": CREDS,
        "same_digest_as": TRANSPORT_REF,
        "same_digest_creds": CREDS,
        "labels": LABELS,
        "architecture": {"type": "string", "minLength": 1, "description": "as skopeo inspect reports it"},
        "os": {"type": "string", "minLength": 1},
    },
    "ref",
)


@check("registry_image", SCHEMA)
def registry_image(
    ctx: CheckContext,
    ref: str,
    creds: str | None = None,
    same_digest_as: str | None = None,
    same_digest_creds: str | None = None,
    labels: dict[str, str] | None = None,
    architecture: str | None = None,
    os: str | None = None,
) -> CheckResult:
    """A registry holds ref; optionally the same image as another ref, with labels, architecture and os."""
    trace = Trace(ctx, "registry_image", f"{ref} exists")
    trace.query(f"inspect {ref}")
    try:
        info: dict[str, Any] = ctx.engine.inspect(ref, creds=creds)
    except LabcheckError as exc:
        return trace.failed(registry_problem(exc, ref, creds), expected=ref, actual="unreadable")
    digest = info.get("Digest", "")
    if labels:
        mismatches = label_mismatches(labels, info.get("Labels"))
        if mismatches:
            return trace.failed(f"{ref}: {'; '.join(mismatches)}", expected=f"labels {show(labels)}",
                                actual=show(info.get("Labels")))
    for field, wanted in (("Architecture", architecture), ("Os", os)):
        if wanted is not None and not matches(wanted, info.get(field)):
            return trace.failed(f"{ref} is for {field.lower()} {info.get(field)}, not {wanted}",
                                expected=f"{field} {wanted}", actual=f"{field} {info.get(field)}")
    if same_digest_as:
        try:
            source = source_digests(trace, same_digest_as, same_digest_creds)
        except LabcheckError as exc:
            return trace.failed(registry_problem(exc, same_digest_as, same_digest_creds),
                                expected=f"the image of {same_digest_as}")
        if not source.accepts([digest]):
            return trace.failed(source.mismatch(ref, digest), expected=source.expected(), actual=digest)
        return trace.passed(expected=source.expected(), actual=digest)
    return trace.passed(expected=ref, actual=f"{ref} ({digest})")
