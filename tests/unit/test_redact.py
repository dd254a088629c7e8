"""One redaction mechanism: a secret is masked in every encoding an output gives it, nested ones included."""

from __future__ import annotations

import base64
import html
import json
import shlex
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape as xml_escape

import pytest

from labcheck.report.html_extras import step_html
from labcheck.redact import Redactor
from labcheck.results import ActionOutcome, StepResult

PASSWORD = "s3cr& <t> \"q\" 'x' \\ $HOME %41 +é😀 end"
CREDS = f"student:{PASSWORD}"

ENCODINGS = {
    "plain": lambda v: v,
    "html": html.escape,
    "html, quotes left": lambda v: html.escape(v, quote=False),
    "xml": xml_escape,
    "markupsafe-style": lambda v: html.escape(v).replace("&#x27;", "&#39;").replace("&quot;", "&#34;"),
    "json": json.dumps,
    "json, not ascii": lambda v: json.dumps(v, ensure_ascii=False),
    "shell": shlex.quote,
    "repr": repr,
    "url": lambda v: quote(v, safe=""),
    "url, form": quote_plus,
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
    "url-safe base64": lambda v: base64.urlsafe_b64encode(v.encode()).decode(),
    # one encoding inside another, as reports nest them
    "shell in json in html": lambda v: html.escape(json.dumps(shlex.quote(v))),
    "shell in repr": lambda v: repr(shlex.quote(v)),
    "json in json": lambda v: json.dumps(json.dumps(v)),
    "html twice": lambda v: html.escape(html.escape(v)),
    "url twice": lambda v: quote(quote(v, safe=""), safe=""),
}


@pytest.mark.parametrize("secret", [PASSWORD, CREDS], ids=["password", "user:password"])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_encoding_is_masked(encoding: str, secret: str) -> None:
    redactor = Redactor()
    redactor.add(CREDS)
    encoded = ENCODINGS[encoding](secret)
    masked = redactor.redact(f"before {encoded} after")
    assert masked.startswith("before ") and masked.endswith(" after"), masked
    for token in ("s3cr", "HOME", "end"):
        assert token not in masked, masked


def test_a_shell_quoted_password_inside_a_longer_word_is_masked() -> None:
    redactor = Redactor()
    redactor.add(CREDS)
    line = "skopeo copy " + shlex.quote(f"--dest-creds={CREDS}") + " docker://a docker://b"
    assert redactor.redact(line) == "skopeo copy '--dest-creds=***' docker://a docker://b"


def test_text_that_only_resembles_the_secret_is_left_alone() -> None:
    redactor = Redactor()
    redactor.add(CREDS)
    text = "s3cr <t> q x HOME 41 end; student; s3cr&amp;t"
    assert redactor.redact(text) == text


def test_the_html_of_a_step_masks_a_password_that_escaping_would_change() -> None:
    redactor_secret = "s3cr&t'Pass<x>"
    from labcheck.redact import REDACTOR

    REDACTOR.add(redactor_secret)
    result = StepResult("push", "Push", "alice", "failed", reason=f"denied for {redactor_secret}",
                        hint=f"skopeo copy --dest-creds 'u:{redactor_secret}' a b",
                        actions=[ActionOutcome(f"copy --dest-creds {redactor_secret}", False, redactor_secret, "boom")])
    page = step_html(result)
    assert "s3cr" not in page and "Pass" not in page, page
    assert "--dest-creds ***" in page and "denied for ***" in page
