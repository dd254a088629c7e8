"""Image configs read the way Go's encoding/json reads them into containers/image's structs.

skopeo converts a Docker config to OCI by unmarshalling it into image-spec's `Image` struct and
marshalling it again; `to_oci_config` reproduces those bytes exactly.
"""

from __future__ import annotations

import json
import re
from typing import Any

from labcheck.engine.format import gojson
from labcheck.errors import LabcheckError


class ConfigError(LabcheckError):
    """An image config that Go's JSON decoder would refuse."""


# (json name, kind, omitempty); kind is a scalar name or a nested spec.
Spec = list[tuple[str, Any, bool]]

HISTORY: Spec = [
    ("created", "time", True),
    ("created_by", "str", True),
    ("author", "str", True),
    ("comment", "str", True),
    ("empty_layer", "bool", True),
]
IMAGE_CONFIG: Spec = [
    ("User", "str", True),
    ("ExposedPorts", "set", True),
    ("Env", "strlist", True),
    ("Entrypoint", "strlist", True),
    ("Cmd", "strlist", True),
    ("Volumes", "set", True),
    ("WorkingDir", "str", True),
    ("Labels", "strmap", True),
    ("StopSignal", "str", True),
    ("ArgsEscaped", "bool", True),
]
ROOTFS: Spec = [("type", "str", False), ("diff_ids", "strlist", False)]
OCI_IMAGE: Spec = [
    ("created", "time", True),
    ("author", "str", True),
    ("architecture", "str", False),
    ("variant", "str", True),
    ("os", "str", False),
    ("os.version", "str", True),
    ("os.features", "strlist", True),
    ("config", IMAGE_CONFIG, False),  # omitempty has no effect on a Go struct
    ("rootfs", ROOTFS, False),
    ("history", [HISTORY], True),
]
# The fields of Docker's schema2 config that `inspect` reads (manifest.Schema2Image).
DOCKER_IMAGE: Spec = [
    ("docker_version", "str", True),
    ("architecture", "str", True),
    ("variant", "str", True),
    ("os", "str", True),
    ("created", "time", False),
    ("config", [("Labels", "strmap", False), ("Env", "strlist", False)], True),
]

_TIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)


def go_time(text: str) -> str:
    """Normalise an RFC 3339 time the way a Go time.Time round trip does (RFC3339Nano)."""
    m = _TIME_RE.match(text)
    if not m:
        raise ConfigError(f"parsing time {json.dumps(text)} as RFC 3339 failed")
    base, frac, zone = m.groups()
    frac = (frac or "")[:9].rstrip("0")
    zone = "Z" if zone.upper() == "Z" or zone[1:] == "00:00" else zone
    return base.upper() + (f".{frac}" if frac else "") + zone


def decode(data: Any, spec: Spec) -> dict[str, Any]:
    """Decode a JSON object into a struct described by spec; absent or null fields are None."""
    out: dict[str, Any] = {name: None for name, _, _ in spec}
    if data is None:
        return out
    if not isinstance(data, dict):
        raise ConfigError(f"cannot unmarshal {type(data).__name__} into an object")
    names = [name for name, _, _ in spec]
    kinds = {name: kind for name, kind, _ in spec}
    for key, value in data.items():
        field = key if key in kinds else next((n for n in names if n.lower() == key.lower()), None)
        if field is None or value is None:
            continue
        out[field] = _decode_value(value, kinds[field], field)
    return out


def _decode_value(value: Any, kind: Any, field: str) -> Any:
    if isinstance(kind, list) and kind and isinstance(kind[0], list):
        _expect(value, list, field)
        return [decode(item, kind[0]) for item in value]
    if isinstance(kind, list):
        return decode(value, kind)
    if kind == "str":
        return _expect(value, str, field)
    if kind == "bool":
        return _expect(value, bool, field)
    if kind == "time":
        return go_time(_expect(value, str, field))
    if kind == "strlist":
        return [_expect(v, str, field) for v in _expect(value, list, field)]
    if kind == "strmap":
        return {k: _expect(v, str, field) for k, v in _expect(value, dict, field).items()}
    if kind == "set":
        return {k: {} for k in _expect(value, dict, field)}
    raise AssertionError(kind)


def _expect(value: Any, typ: type, field: str) -> Any:
    if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
        raise ConfigError(f"json: cannot unmarshal {type(value).__name__} into field {field} of the image config")
    return value


def encode(decoded: dict[str, Any], spec: Spec) -> dict[str, Any]:
    """The object Go would marshal from a decoded struct: omitempty applied, maps sorted."""
    out: dict[str, Any] = {}
    for name, kind, omitempty in spec:
        value = decoded.get(name)
        if isinstance(kind, list) and kind and isinstance(kind[0], list):
            value = None if value is None else [encode(v, kind[0]) for v in value]
        elif isinstance(kind, list):
            value = encode(value or {}, kind)
        elif kind in ("strmap", "set") and value is not None:
            value = gojson.sorted_map(value)
        if omitempty and (value is None or value is False or value == "" or value == [] or value == {}):
            continue
        out[name] = value
    return out


def parse_config(blob: bytes) -> Any:
    try:
        return json.loads(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"image config is not valid JSON: {exc}") from exc


def oci_config(blob: bytes) -> dict[str, Any]:
    """The OCI image config skopeo derives from any config blob, as an ordered object."""
    return encode(decode(parse_config(blob), OCI_IMAGE), OCI_IMAGE)


def to_oci_config(blob: bytes) -> bytes:
    """Exactly the config bytes skopeo writes when it converts an image to OCI."""
    return gojson.dumps(oci_config(blob)).encode()
