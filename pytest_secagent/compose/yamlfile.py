"""Compose YAML read with the line of every key, Compose's ``!reset``/``!override`` tags kept.

Mappings come back as :class:`LineMap` (a ``dict`` that knows the line of each key), so an
error can name the file, line and key. Anchors, aliases and merge keys (``<<``) work as in
any YAML; a key written twice in one mapping is an error, as it is for Compose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_FILE_BYTES", "LineMap", "Override", "Reset", "YamlFileError", "load_yaml_file"]

#: The largest Compose file read (bytes); compose files are small.
MAX_FILE_BYTES = 4 * 1024 * 1024


class YamlFileError(ValueError):
    """A file that cannot be read as YAML; the message names the file and the line."""


class LineMap(dict[str, Any]):
    """A mapping that remembers the line of each of its keys and its own first line."""

    line: int = 0
    lines: dict[str, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines = {}

    def line_of(self, key: str) -> int:
        """The line ``key`` is written on, else the mapping's own line."""
        return self.lines.get(key, self.line)


@dataclass(frozen=True)
class Reset:
    """``!reset``: the value is removed from what the earlier files said."""


@dataclass(frozen=True)
class Override:
    """``!override``: the value replaces what the earlier files said instead of merging."""

    value: Any


class _Loader(yaml.SafeLoader):
    """The safe loader, with line-aware mappings and Compose's two tags."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> LineMap:
    own = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode) and k.value != "<<"]
    seen: set[str] = set()
    for key in own:
        if key in seen:
            line = next(k.start_mark.line + 1 for k, _ in node.value
                        if isinstance(k, yaml.ScalarNode) and k.value == key)
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice in one mapping (first on line {line})",
                node.start_mark,
            )
        seen.add(key)
    loader.flatten_mapping(node)
    mapping = LineMap()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        name = str(key)
        mapping[name] = loader.construct_object(value_node, deep=True)
        mapping.lines[name] = key_node.start_mark.line + 1
    return mapping


def _construct_reset(loader: _Loader, node: yaml.Node) -> Reset:
    return Reset()


def _construct_override(loader: _Loader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(_construct_map(loader, node))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("!reset", _construct_reset)
_Loader.add_constructor("!override", _construct_override)


def load_yaml_file(path: Path) -> object:
    """The document in ``path`` (``None`` when empty).

    Errors name the file, line and column and the parser's complaint, never the line's text,
    which may hold a credential.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise YamlFileError(f"{path}: {size} bytes is more than a compose file holds "
                                f"({MAX_FILE_BYTES} at most)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise YamlFileError(f"{path}: cannot be read: {reason}") from None
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlFileError(f"{where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{path}: not valid YAML: {type(exc).__name__}") from None
    if len(documents) > 1:
        raise YamlFileError(f"{path}: holds {len(documents)} YAML documents; a compose file holds one")
    return documents[0] if documents else None
