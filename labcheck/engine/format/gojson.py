"""JSON text exactly as Go's encoding/json writes it (compact or MarshalIndent), for byte-compatible output."""

from __future__ import annotations

import datetime
from typing import Any

_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ALWAYS_U = {"<", ">", "&", "\u2028", "\u2029"}


def quote(text: str) -> str:
    """A JSON string literal with Go's escaping: `<>&` and U+2028/9 as \\u, control chars as \\u00xx."""
    out = ['"']
    for ch in text:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ch < " " or ch in _ALWAYS_U:
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")  # Go decodes a lone surrogate escape as U+FFFD
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dumps(value: Any, indent: str | None = None) -> str:
    """Serialize dicts (in their insertion order), lists, str, int, bool and None like Go.

    Callers order dict keys as Go would (struct field order, or sorted for maps).
    """
    parts: list[str] = []
    _encode(value, parts, indent, 0)
    return "".join(parts)


def _encode(value: Any, out: list[str], indent: str | None, depth: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(repr(value) if value != int(value) else str(int(value)))
    elif isinstance(value, str):
        out.append(quote(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            _newline(out, indent, depth + 1)
            out.append(quote(key))
            out.append(": " if indent is not None else ":")
            _encode(item, out, indent, depth + 1)
        _newline(out, indent, depth)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _newline(out, indent, depth + 1)
            _encode(item, out, indent, depth + 1)
        _newline(out, indent, depth)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _newline(out: list[str], indent: str | None, depth: int) -> None:
    if indent is not None:
        out.append("\n" + indent * depth)


def sorted_map(mapping: dict[str, Any]) -> dict[str, Any]:
    """A Go map marshals with its keys sorted (byte order of UTF-8)."""
    return {k: mapping[k] for k in sorted(mapping, key=lambda k: k.encode("utf-8", "surrogatepass"))}


def time_text(unix_ns: int) -> str:
    """A time.Time (local zone) as Go's encoding/json writes it: RFC 3339, nanoseconds without trailing zeros."""
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds).astimezone()
    offset = moment.utcoffset() or datetime.timedelta()
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    if offset:
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    else:
        zone = "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone
