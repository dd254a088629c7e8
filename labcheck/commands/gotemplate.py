"""The part of Go's text/template that people type in `skopeo inspect --format`.

Fields (`{{.Name}}`, `{{.Labels.vendor}}`), variables, `{{range}}`, `{{if}}`/`{{else}}`, `{{with}}`,
pipelines, and the functions index, len, printf, print, println, eq, ne, lt, le, gt, ge, and, or,
not, plus json (containers/common's, which skopeo 1.9.3 lacks except as the whole `{{json .}}`).
Values print as Go's fmt %v prints them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from labcheck.errors import UsageError

NAME = "skopeo inspect"
# Where skopeo 1.9's error columns start counting, as measured against it: {{.X}}'s field is column 14.
_COLUMN_OFFSET = 12

_ACTION = re.compile(r"{{(-\s)?(.*?)(\s-)?}}", re.DOTALL)
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<raw>`[^`]*`)|(?P<num>-?\d+(?:\.\d+)?)'
    r"|(?P<decl>:=|=)|(?P<pipe>\|)|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)"
    r"|(?P<field>(?:\$[\w]*)?(?:\.[A-Za-z_]\w*)+|\.|\$\w*)|(?P<ident>[A-Za-z_]\w*))"
)


class GoTime(str):
    """A timestamp that prints as Go's time.Time.String() and marshals as its RFC 3339 text."""

    def go_string(self) -> str:
        m = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", self)
        if not m:
            return str(self)
        date, clock, frac, zone = m.groups()
        offset = "+0000" if zone == "Z" else zone.replace(":", "")
        name = "UTC" if zone == "Z" else offset
        return f"{date} {clock}{frac or ''} {offset} {name}"


def go_value(value: Any, *, time_field: bool = False) -> str:
    """A value as Go's fmt %v prints it."""
    if value is None:
        return "<nil>"
    if isinstance(value, GoTime) or (time_field and isinstance(value, str)):
        return GoTime(value).go_string()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


class _Missing:
    """A map key that is not there: prints as Go's <no value>."""

    def __str__(self) -> str:
        return "<no value>"


MISSING = _Missing()


# --- parsing -------------------------------------------------------------------------------------


@dataclass
class _Pipeline:
    commands: list[list[Any]]  # each command: operands (("field", parts, var) | ("lit", v) | ("fn", name) | _Pipeline)
    declare: list[str] = field(default_factory=list)
    text: str = ""
    column: int = 0


@dataclass
class _Node:
    kind: str  # "text", "print", "if", "range", "with"
    text: str = ""
    pipe: _Pipeline | None = None
    body: list["_Node"] = field(default_factory=list)
    orelse: list["_Node"] = field(default_factory=list)


def _fail(message: str) -> UsageError:
    return UsageError(f"template: {NAME}:{message}", hint="see Go's text/template; e.g. {{.Name}}, "
                      '{{index .Labels "org.x"}}, {{range .RepoTags}}{{.}} {{end}}')


def _tokens(text: str, column: int) -> list[tuple[str, str, int]]:
    """(kind, text, column) of each token; column counts as skopeo's error messages do."""
    out, pos = [], 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _fail(f"1:{column + pos}: unexpected {text[pos:].strip()[:10]!r} in command")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind), column + m.start(kind)))
        pos = m.end()
    return out


def _parse_pipeline(text: str, column: int) -> _Pipeline:
    tokens = _tokens(text, column)
    declare: list[str] = []
    # `$i, $v := …` or `$v := …`
    if len(tokens) >= 2 and tokens[0][0] == "field" and tokens[0][1].startswith("$"):
        if tokens[1][0] == "decl":
            declare, tokens = [tokens[0][1]], tokens[2:]
        elif tokens[1][0] == "comma" and len(tokens) >= 4 and tokens[3][0] == "decl":
            declare, tokens = [tokens[0][1], tokens[2][1]], tokens[4:]
    pipe, rest = _commands(tokens, column)
    if rest:
        raise _fail(f"1:{column}: unexpected {rest[0][1]!r} in operand")
    pipe.declare, pipe.text, pipe.column = declare, text.strip(), column
    if not pipe.commands:
        raise _fail(f"1:{column}: missing value for command")
    return pipe


def _commands(tokens: list[tuple[str, str, int]], column: int) -> tuple[_Pipeline, list[tuple[str, str, int]]]:
    commands: list[list[Any]] = [[]]
    while tokens:
        kind, value, at = tokens[0]
        if kind == "rp":
            break
        tokens = tokens[1:]
        if kind == "pipe":
            commands.append([])
        elif kind == "lp":
            inner, tokens = _commands(tokens, column)
            if not tokens or tokens[0][0] != "rp":
                raise _fail(f"1:{column}: unclosed left paren")
            tokens = tokens[1:]
            commands[-1].append(inner)
        elif kind == "str":
            commands[-1].append(("lit", json.loads(value)))
        elif kind == "raw":
            commands[-1].append(("lit", value[1:-1]))
        elif kind == "num":
            commands[-1].append(("lit", float(value) if "." in value else int(value)))
        elif kind == "field":
            var, _, path = value.partition(".") if value.startswith("$") else ("", "", value[1:])
            commands[-1].append(("field", [p for p in path.split(".") if p], var or None, value, at))
        elif kind == "ident":
            literal = {"true": True, "false": False, "nil": None}
            if value not in literal and value not in FUNCTIONS:
                raise _fail(f'1: function "{value}" not defined')
            commands[-1].append(("lit", literal[value]) if value in literal else ("fn", value))
        else:
            raise _fail(f"1:{column}: unexpected {value!r} in command")
    return _Pipeline([c for c in commands if c] if any(commands) else []), tokens


def _parse(template: str) -> list[_Node]:
    root: list[_Node] = []
    # (node whose list is being filled, that list, closed by the {{end}} of the if it is the else-if of)
    stack: list[tuple[_Node | None, list[_Node], bool]] = [(None, root, False)]
    pos = 0
    pending_trim = False
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        if pending_trim:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            stack[-1][1].append(_Node("text", text))
        pending_trim = bool(m.group(3))
        pos = m.end()
        body = m.group(2).strip()
        column = m.start(2) + (len(m.group(2)) - len(m.group(2).lstrip())) + _COLUMN_OFFSET
        keyword = body.split(None, 1)[0] if body else ""
        if body.startswith("/*"):
            continue
        if keyword in ("if", "range", "with"):
            node = _Node(keyword, pipe=_parse_pipeline(body[len(keyword):], column + len(keyword)))
            stack[-1][1].append(node)
            stack.append((node, node.body, False))
        elif keyword == "else":
            owner, _, chained = stack[-1]
            if owner is None:
                raise _fail(f"1:{column}: unexpected {{{{else}}}}")
            stack[-1] = (owner, owner.orelse, chained)
            rest = body[4:].strip()
            if rest.startswith("if "):  # {{else if …}}: a nested if that the same {{end}} closes
                at = body.index("if", 4) + 2
                nested = _Node("if", pipe=_parse_pipeline(body[at:], column + at))
                owner.orelse.append(nested)
                stack.append((nested, nested.body, True))
        elif keyword == "end":
            if len(stack) == 1:
                raise _fail(f"1:{column}: unexpected {{{{end}}}}")
            while stack.pop()[2]:
                pass
        else:
            stack[-1][1].append(_Node("print", pipe=_parse_pipeline(body, column)))
    tail = template[pos:]
    if pending_trim:
        tail = tail.lstrip()
    if tail:
        stack[-1][1].append(_Node("text", tail))
    if len(stack) > 1:
        open_kind = stack[-1][0].kind if stack[-1][0] else ""
        raise _fail(f"1: unexpected EOF (a {open_kind} has no end)")
    return root


# --- evaluation ----------------------------------------------------------------------------------


def _truth(value: Any) -> bool:
    return not (value is None or value is MISSING or value is False or value == 0 or value == "" or
                (isinstance(value, (list, dict)) and not value))


def _printf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs templates use: %v %s %d %q %t and widths."""
    values = iter(args)

    def verb(m: re.Match[str]) -> str:
        flags, kind = m.group(1) or "", m.group(2)
        if kind == "%":
            return "%"
        value = next(values, MISSING)
        if value is MISSING:
            return f"%!{kind}(MISSING)"
        if kind == "q":
            text = json.dumps(value if isinstance(value, str) else go_value(value), ensure_ascii=False)
        elif kind == "d" and isinstance(value, int) and not isinstance(value, bool):
            return ("%" + flags + "d") % value
        else:
            text = go_value(value)
        return ("%" + flags + "s") % text

    return re.sub(r"%([-+ 0#]?\d*)([vsdqt%])", verb, fmt)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, MISSING) if isinstance(key, str) else MISSING
        elif isinstance(value, list) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise _fail(f" error calling index: index out of range: {key}")
            value = value[key]
        else:
            raise _fail(f" error calling index: can't index item of type {type(value).__name__}")
    return value


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=isinstance(value, dict), ensure_ascii=False)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    return lambda a, *b: any(op(a, x) for x in b) if op is _eq else op(a, b[0])


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "index": _index, "len": lambda v: len(v), "printf": _printf, "json": _json,
    "print": lambda *a: " ".join(go_value(v) for v in a), "println": lambda *a: " ".join(go_value(v) for v in a) + "\n",
    "eq": _compare(_eq), "ne": _compare(lambda a, b: a != b), "lt": _compare(lambda a, b: a < b),
    "le": _compare(lambda a, b: a <= b), "gt": _compare(lambda a, b: a > b), "ge": _compare(lambda a, b: a >= b),
    "not": lambda v: not _truth(v), "and": lambda *a: next((v for v in a if not _truth(v)), a[-1]),
    "or": lambda *a: next((v for v in a if _truth(v)), a[-1]),
}


class _Scope:
    def __init__(self, dot: Any, root: Any, variables: dict[str, Any]) -> None:
        self.dot, self.root, self.variables = dot, root, variables


def _field(scope: _Scope, parts: list[str], var: str | None, shown: str, column: int) -> Any:
    if var is not None:
        if var == "$":
            value = scope.root
        elif var not in scope.variables:
            raise _fail(f'1:{column}: undefined variable "{var}"')
        else:
            value = scope.variables[var]
    else:
        value = scope.dot
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, dict) and value is not scope.root and value is not scope.dot:
            value = MISSING  # a key a map does not have
        else:
            raise _fail(f'1:{column}: executing "{NAME}" at <{shown}>: can\'t evaluate field {part} '
                        "in type interface {}")
    return value


def _run_pipeline(pipe: _Pipeline, scope: _Scope) -> Any:
    result: Any = None
    for i, command in enumerate(pipe.commands):
        args = [_operand(op, scope, pipe.column) for op in command[1:]]
        if i > 0:
            args.append(result)
        head = command[0]
        if isinstance(head, tuple) and head[0] == "fn":
            function = FUNCTIONS.get(head[1])
            if function is None:
                raise _fail(f'1: function "{head[1]}" not defined')
            try:
                result = function(*args)
            except UsageError:
                raise
            except (TypeError, ValueError, IndexError) as exc:
                raise _fail(f'1:{pipe.column}: executing "{NAME}" at <{head[1]}>: error calling {head[1]}: {exc}') from None
        else:
            if args:
                raise _fail(f"1:{pipe.column}: can't give argument to non-function {pipe.text}")
            result = _operand(head, scope, pipe.column)
    for name in pipe.declare[-1:]:
        scope.variables[name] = result
    return result


def _operand(op: Any, scope: _Scope, column: int) -> Any:
    if isinstance(op, _Pipeline):
        return _run_pipeline(op, scope)
    kind = op[0]
    if kind == "lit":
        return op[1]
    if kind == "field":
        return _field(scope, op[1], op[2], op[3], op[4])
    raise _fail(f'1: function "{op[1]}" not defined')


def _execute(nodes: list[_Node], scope: _Scope) -> Iterator[str]:
    for node in nodes:
        if node.kind == "text":
            yield node.text
        elif node.kind == "print":
            assert node.pipe is not None
            value = _run_pipeline(node.pipe, scope)
            if not node.pipe.declare:
                yield go_value(value)
        elif node.kind in ("if", "with"):
            assert node.pipe is not None
            value = _run_pipeline(node.pipe, scope)
            if _truth(value):
                inner = _Scope(value if node.kind == "with" else scope.dot, scope.root, dict(scope.variables))
                yield from _execute(node.body, inner)
            else:
                yield from _execute(node.orelse, scope)
        elif node.kind == "range":
            assert node.pipe is not None
            declare, node.pipe.declare = node.pipe.declare, []
            value = _run_pipeline(node.pipe, scope)
            node.pipe.declare = declare
            items = sorted(value.items()) if isinstance(value, dict) else list(enumerate(value or []))
            if not items:
                yield from _execute(node.orelse, scope)
            for key, item in items:
                variables = dict(scope.variables)
                if len(declare) == 2:
                    variables[declare[0]], variables[declare[1]] = key, item
                elif declare:
                    variables[declare[0]] = item
                yield from _execute(node.body, _Scope(item, scope.root, variables))


def is_whole_json(template: str) -> bool:
    """`{{json .}}`: skopeo prints its usual JSON output for it."""
    return re.fullmatch(r"{{-?\s*json\s+\.\s*-?}}", template.strip()) is not None


def render(template: str, data: dict[str, Any]) -> str:
    """template applied to data (skopeo inspect's output as JSON, with every field of its Go struct
    present), as skopeo 1.9's --format does."""
    if isinstance(data.get("Created"), str):
        data = {**data, "Created": GoTime(data["Created"])}
    nodes = _parse(template)
    return "".join(_execute(nodes, _Scope(data, data, {"$": data})))
