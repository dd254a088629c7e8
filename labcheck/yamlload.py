"""A YAML loader that remembers where every value came from (file:line:col) for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class LoadedYaml:
    """Plain Python data plus the position of each node, keyed by its path from the root."""

    data: Any
    positions: dict[Path_, Position] = field(default_factory=dict)
    duplicate_keys: list[tuple[Path_, Position]] = field(default_factory=list)

    def position(self, path: Path_) -> Position:
        """The position of path, or of its nearest ancestor that has one."""
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, Position(1, 1))


class YamlSyntaxError(Exception):
    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def load_yaml(text: str) -> LoadedYaml:
    """Parse YAML (safe types only) and record positions; raises YamlSyntaxError."""
    loaded = LoadedYaml(None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            loaded.data = _convert(node, (), loaded)  # constructing scalars can fail too (an unknown tag)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        raise YamlSyntaxError(f"YAML syntax error: {exc.problem or exc}", position) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. a control character
        before = text[: exc.position]
        position = Position(before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise YamlSyntaxError(f"YAML syntax error: character {character!r} is not allowed "
                              "(write control characters as escapes in a double-quoted string)", position) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML syntax error: {exc}", Position(1, 1)) from None
    return loaded


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node: yaml.Node, path: Path_, loaded: LoadedYaml) -> Any:
    loaded.positions[path] = _position(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            key_path = (*path, key)
            if key in result:
                loaded.duplicate_keys.append((key_path, _position(key_node)))
            loaded.positions[(*key_path, "__key__")] = _position(key_node)
            result[key] = _convert(value_node, key_path, loaded)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, index), loaded) for index, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return str(node.value)
    loader = yaml.SafeLoader("")
    return loader.construct_object(node, deep=True)
