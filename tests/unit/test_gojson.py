"""Go's encoding/json output, byte for byte."""

from labcheck.engine.format import gojson


def test_escapes_like_go() -> None:
    assert gojson.quote('a<b>&"\\\n\t\x01\x08\u2028é') == '"a\\u003cb\\u003e\\u0026\\"\\\\\\n\\t\\u0001\\u0008\\u2028é"'


def test_compact_and_indented() -> None:
    value = {"b": [1, "x"], "a": {}, "c": [], "d": None, "e": True}
    assert gojson.dumps(value) == '{"b":[1,"x"],"a":{},"c":[],"d":null,"e":true}'
    assert gojson.dumps({"k": [1], "e": []}, indent="    ") == '{\n    "k": [\n        1\n    ],\n    "e": []\n}'


def test_sorted_map_sorts_bytewise() -> None:
    assert list(gojson.sorted_map({"b": 1, "B": 2, "a": 3})) == ["B", "a", "b"]
