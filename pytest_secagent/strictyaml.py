"""Strict, bounded YAML for the user's own files (policy, waivers): what the plain loader lets by.

PyYAML's composer accepts any tag on a mapping or list (``!!python/object/apply:...``), keeps
the last of two equal keys without a word, and lets anchors and aliases multiply a small file
into a huge tree. A configuration file that means something other than it says is a usage
error here: :func:`check_tree` rejects every tag outside the YAML 1.1 core schema that the
safe loader resolves, any key that appears twice in one mapping (at every level), and a tree
that aliases expand beyond :data:`MAX_NODES` values.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

__all__ = ["MAX_NODES", "STANDARD_TAGS", "StrictYamlError", "check_tree"]

#: The tags the safe loader resolves by itself (YAML 1.1 core schema), plus the merge key.
STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
)

#: The most values one file may hold once aliases are expanded.
MAX_NODES = 200_000


class StrictYamlError(ValueError):
    """The YAML is valid but not acceptable; the message names the line and the fix."""


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _key_text(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else "(a complex key)"


def _walk(root: yaml.Node) -> Iterator[tuple[yaml.Node, str]]:
    """Every node with its dotted path; aliases are followed, so shared nodes repeat."""
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        yield node, path
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                name = _key_text(key)
                stack.append((value, f"{path}.{name}" if path else name))
                stack.append((key, f"{path}.{name}" if path else name))
        elif isinstance(node, yaml.SequenceNode):
            for index in range(len(node.value) - 1, -1, -1):
                stack.append((node.value[index], f"{path}[{index}]"))


def check_tree(root: yaml.Node | None, source: str) -> None:
    """Raise :class:`StrictYamlError` naming ``source`` and the line of the first problem.

    Problems: a tag outside :data:`STANDARD_TAGS`; a key that appears twice in one mapping;
    more than :data:`MAX_NODES` values after alias expansion.
    """
    if root is None:
        return
    count = 0
    for node, path in _walk(root):
        count += 1
        if count > MAX_NODES:
            raise StrictYamlError(
                f"{source}: more than {MAX_NODES} values once anchors and aliases are expanded; "
                "write the values out, or split the file"
            )
        where = f"key '{path}'" if path else "the top level"
        if node.tag not in STANDARD_TAGS:
            raise StrictYamlError(
                f"{source}:{_line(node)}: {where}: the tag {node.tag!r} is not allowed; only plain YAML "
                "values (strings, numbers, booleans, null, dates, lists and mappings) are accepted"
            )
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                ident = (key.tag, key.value)
                if ident in seen:
                    dotted = f"{path}.{key.value}" if path else key.value
                    raise StrictYamlError(
                        f"{source}:{_line(key)}: key '{dotted}': appears twice (first on line "
                        f"{seen[ident]}); keep one"
                    )
                seen[ident] = _line(key)
