"""Read a policy file into the typed :class:`Policy`, with errors that name file, line and key."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from pytest_secagent.policy.model import Policy
from pytest_secagent.strictyaml import StrictYamlError, check_tree
from pytest_secagent.textfile import read_text_file

__all__ = ["LoadedPolicy", "PolicyError", "load_policy", "parse_policy"]


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file, line, key and the fix."""


@dataclasses.dataclass(frozen=True)
class LoadedPolicy:
    """A validated policy plus where it came from."""

    policy: Policy
    source: str
    sha256: str


# libyaml's safe loader where PyYAML was built with it; both keep line marks on nodes.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A safe loader; the policy is composed into nodes so that errors can name lines."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _where(source: str, node: yaml.Node | None) -> str:
    if node is None:
        return source
    return f"{source}:{node.start_mark.line + 1}"


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in get_args(tp) if a is not type(None)]
        optional = type(None) in get_args(tp)
        return " or ".join(names) + (" (or null)" if optional else "")
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return "a mapping of strings"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            dt.date: "a date (YYYY-MM-DD)"}.get(tp, getattr(tp, "__name__", str(tp)))


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    value = node.value
    return "nothing (null)" if node.tag.endswith(":null") else repr(value)


class _Converter:
    def __init__(self, source: str) -> None:
        self.source = source
        self.constructor = yaml.SafeLoader(stream="")

    def fail(self, node: yaml.Node | None, key: str, message: str) -> PolicyError:
        return PolicyError(f"{_where(self.source, node)}: key '{key}': {message}")

    def scalar(self, node: yaml.Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise PolicyError(f"{_where(self.source, node)}: not a plain YAML value: {problem}") from None

    def convert(self, tp: Any, node: yaml.Node, key: str) -> Any:
        origin = get_origin(tp)
        expected = f"expected {_type_name(tp)}, got {_describe(node)}"
        if origin in (Union, types.UnionType):
            members = get_args(tp)
            if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null") and type(None) in members:
                return None
            for member in members:
                if member is type(None):
                    continue
                try:
                    return self.convert(member, node, key)
                except PolicyError:
                    continue
            raise self.fail(node, key, expected)
        if origin is Literal:
            value = self.scalar(node) if isinstance(node, yaml.ScalarNode) else None
            if value in get_args(tp) and isinstance(value, type(get_args(tp)[0])):
                return value
            raise self.fail(node, key, expected)
        if origin is list:
            if not isinstance(node, yaml.SequenceNode):
                raise self.fail(node, key, expected)
            (item_type,) = get_args(tp)
            return [self.convert(item_type, item, f"{key}[{i}]") for i, item in enumerate(node.value)]
        if origin is dict:
            if not isinstance(node, yaml.MappingNode):
                raise self.fail(node, key, expected)
            result: dict[str, str] = {}
            for knode, vnode in node.value:
                name = str(self.scalar(knode))
                value = self.scalar(vnode) if isinstance(vnode, yaml.ScalarNode) else None
                if not isinstance(value, (str, int, float, bool)) or value is None:
                    raise self.fail(vnode, f"{key}.{name}", f"expected a string, got {_describe(vnode)}")
                result[name] = str(value).lower() if isinstance(value, bool) else str(value)
            return result
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, node, key)
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, key, expected)
        value = self.scalar(node)
        if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if tp is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if tp is bool and isinstance(value, bool):
            return value
        if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            # The text as written: a version such as 20.10 must not become the float 20.1.
            return value if isinstance(value, str) else str(node.value)
        if tp is dt.date:
            if isinstance(value, dt.datetime):
                return value.date()
            if isinstance(value, dt.date):
                return value
            if isinstance(value, str):
                try:
                    return dt.date.fromisoformat(value)
                except ValueError:
                    pass
        raise self.fail(node, key, expected)

    def dataclass(self, cls: Any, node: yaml.Node, key: str) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return cls()
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key or "(top level)", f"expected a mapping, got {_describe(node)}")
        hints = _hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for knode, vnode in node.value:
            name = self.scalar(knode)
            dotted = f"{key}.{name}" if key else str(name)
            if not isinstance(name, str) or name not in fields:
                valid = ", ".join(sorted(fields))
                raise self.fail(knode, dotted, f"unknown key; valid keys here: {valid}")
            if name in values:
                raise self.fail(knode, dotted, "appears twice")
            values[name] = self.convert(hints[name], vnode, dotted)
        return cls(**values)


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        node = yaml.compose(text, Loader=_Loader)
        check_tree(node, source)
    except StrictYamlError as exc:
        raise PolicyError(str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{source}{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from None
    return node


def parse_policy(text: str, source: str) -> Policy:
    """Validate policy YAML ``text`` (named ``source`` in errors) into a :class:`Policy`."""
    node = _compose(text, source)
    if node is None:
        return Policy()
    policy: Policy = _Converter(source).dataclass(Policy, node, "")
    _check_consistency(policy, source)
    return policy


def _check_consistency(policy: Policy, source: str) -> None:
    tls = policy.tls
    if tls.cert_warn_days_left < tls.cert_min_days_left:
        raise PolicyError(
            f"{source}: key 'tls.cert_warn_days_left': must be at least tls.cert_min_days_left "
            f"({tls.cert_min_days_left}), got {tls.cert_warn_days_left}"
        )
    if policy.run.timeout_seconds <= 0:
        raise PolicyError(
            f"{source}: key 'run.timeout_seconds': expected a positive number of seconds, "
            f"got {policy.run.timeout_seconds}"
        )
    for rule in policy.firewall_rules.outbound_allowed:
        if not rule.destination:
            raise PolicyError(
                f"{source}: key 'firewall_rules.outbound_allowed': every rule needs a destination"
            )
    if not 0 < policy.credentials.rotation_max_days <= policy.credentials.rotation_hard_max_days:
        raise PolicyError(
            f"{source}: key 'credentials.rotation_max_days': expected 1 to "
            f"credentials.rotation_hard_max_days ({policy.credentials.rotation_hard_max_days}), "
            f"got {policy.credentials.rotation_max_days}"
        )


def load_policy(path: Path | None) -> LoadedPolicy:
    """Load and validate the policy file at ``path``, or the built-in defaults for ``None``."""
    if path is None:
        return LoadedPolicy(policy=Policy(), source="built-in defaults", sha256="")
    read = read_text_file(path, "policy file")
    if isinstance(read, str):
        raise PolicyError(read)
    return LoadedPolicy(policy=parse_policy(read.text, str(path)), source=str(path), sha256=read.sha256)
