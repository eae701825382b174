"""Waivers: accepted failures with a reason, an owner and an expiry date, read from YAML.

A waiver file looks like this::

    waivers:
      - control: SA-RUNTIME-008
        target: "k8s:prod*"          # optional fnmatch pattern on the target ID or URI
        reason: vendor sidecar writes to /tmp until release 2.4
        owner: platform-security@example.com
        expires: 2026-03-31

A current waiver turns a *failure* of its control on a matching target into ``waived``;
errors (evidence that could not be gathered) are never waivable. A waiver is current up to
and including its expiry date; after it, the failure counts again and the report says so.
"""

from __future__ import annotations

import datetime as dt
import difflib
import enum
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from pytest_secagent.catalog import load_catalog
from pytest_secagent.strictyaml import StrictYamlError, check_tree
from pytest_secagent.textfile import read_text_file

__all__ = [
    "WAIVER_FIELDS",
    "Waiver",
    "WaiverError",
    "WaiverMatch",
    "WaiverSet",
    "WaiverState",
    "WaiverStatus",
    "load_waivers",
    "parse_waivers",
    "today",
    "waiver_states",
]

WAIVER_FIELDS = ("control", "target", "reason", "owner", "expires")
_REQUIRED = ("control", "reason", "owner", "expires")
_TOP_LEVEL = ("version", "waivers")


def today() -> dt.date:
    """The date waivers are judged against: today, in local time."""
    return dt.date.today()


class WaiverError(ValueError):
    """The waiver file cannot be used; the message names the file, line, entry and field."""


@dataclass(frozen=True)
class Waiver:
    """One accepted failure: a control on the targets matching ``target``, until ``expires``."""

    control: str
    reason: str
    owner: str
    expires: dt.date
    target: str = "*"
    index: int = 0
    line: int = 0

    def matches(self, control_id: str, target_id: str, target_uri: str) -> bool:
        """Whether this waiver names the control and its target pattern matches the target."""
        if control_id != self.control:
            return False
        return any(fnmatch.fnmatchcase(t, self.target) for t in (target_id, target_uri) if t)

    def expired(self, on: dt.date) -> bool:
        """Whether the waiver no longer applies on the given date (the expiry day still counts)."""
        return on > self.expires

    @property
    def label(self) -> str:
        """Short reference to the entry: its index and line in the file."""
        return f"waivers[{self.index}] (line {self.line})"

    def as_dict(self, status: str) -> dict[str, object]:
        """The waiver as a report record, with how it was used."""
        return {
            "status": status,
            "control": self.control,
            "target": self.target,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
            "entry": self.index,
            "line": self.line,
        }


class WaiverStatus(enum.Enum):
    """What became of a waiver in a run."""

    APPLIED = "applied"
    EXPIRED = "expired"
    UNUSED = "unused"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class WaiverMatch:
    """The waiver that matched a failure, and whether it still applied."""

    waiver: Waiver
    applied: bool


@dataclass(frozen=True)
class WaiverSet:
    """The validated waivers of one file."""

    source: str
    sha256: str
    waivers: tuple[Waiver, ...] = ()

    def match(self, control_id: str, target_id: str, target_uri: str, on: dt.date) -> WaiverMatch | None:
        """The waiver for a failure of this control on this target.

        The first current matching entry applies; when every matching entry has expired,
        the first of them is returned with ``applied=False`` so the report can say so.
        """
        found = [w for w in self.waivers if w.matches(control_id, target_id, target_uri)]
        for waiver in found:
            if not waiver.expired(on):
                return WaiverMatch(waiver, applied=True)
        return WaiverMatch(found[0], applied=False) if found else None


@dataclass(frozen=True)
class WaiverState:
    """A waiver and what became of it in a run."""

    waiver: Waiver
    status: WaiverStatus
    uses: int = 0

    @property
    def problem(self) -> bool:
        """Whether strict mode fails the run for it: expired, or current but matching no failure."""
        return self.status in (WaiverStatus.EXPIRED, WaiverStatus.UNUSED)


def waiver_states(
    waivers: WaiverSet, applied: Iterable[int], controls_run: Iterable[str], on: dt.date
) -> list[WaiverState]:
    """Classify every waiver after a run.

    ``applied`` lists the entry index of every waiver applied to a failure, ``controls_run``
    the IDs of the controls that ran. A waiver whose control did not run at all is *not run*
    (a selection left it out); strict mode does not count it.
    """
    uses: dict[int, int] = {}
    for index in applied:
        uses[index] = uses.get(index, 0) + 1
    ran = set(controls_run)
    states: list[WaiverState] = []
    for waiver in waivers.waivers:
        count = uses.get(waiver.index, 0)
        if waiver.expired(on):
            status = WaiverStatus.EXPIRED
        elif count:
            status = WaiverStatus.APPLIED
        elif waiver.control in ran:
            status = WaiverStatus.UNUSED
        else:
            status = WaiverStatus.NOT_RUN
        states.append(WaiverState(waiver, status, count))
    return states


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Parser:
    def __init__(self, source: str, max_days: int, on: dt.date) -> None:
        self.source = source
        self.max_days = max_days
        self.on = on

    def error(self, node: yaml.Node, where: str, message: str) -> WaiverError:
        return WaiverError(f"{self.source}:{_line(node)}: {where}: {message}")

    def scalar_text(self, node: yaml.Node, where: str, name: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
            raise self.error(node, where, f"field '{name}': expected text, got {_describe(node)}")
        text = str(node.value).strip()
        if not text:
            raise self.error(node, where, f"field '{name}': must not be empty")
        return text

    def expiry(self, node: yaml.Node, where: str) -> dt.date:
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        try:
            expires = dt.date.fromisoformat(str(value)) if value is not None else None
        except ValueError:
            expires = None
        if expires is None:
            raise self.error(
                node, where, f"field 'expires': expected a date (YYYY-MM-DD), got {_describe(node)}"
            )
        ahead = (expires - self.on).days
        if ahead > self.max_days:
            raise self.error(
                node,
                where,
                f"field 'expires': {expires} is {ahead} days ahead; a waiver may run at most "
                f"{self.max_days} days (policy key waivers.max_days); choose an earlier date",
            )
        return expires

    def control(self, node: yaml.Node, where: str) -> str:
        control = self.scalar_text(node, where, "control")
        catalog = load_catalog()
        if control.upper().startswith("SA-") and control not in catalog:
            close = difflib.get_close_matches(control.upper(), catalog.ids, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise self.error(node, where, f"field 'control': unknown control ID {control!r}{hint}")
        return control

    def entry(self, node: yaml.Node, index: int) -> Waiver:
        where = f"waivers[{index}]"
        if not isinstance(node, yaml.MappingNode):
            raise self.error(
                node, where, "expected a mapping with the fields control, reason, owner and expires"
            )
        values: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key not in WAIVER_FIELDS:
                raise self.error(
                    key_node, where,
                    f"field '{key}': unknown field; valid fields: {', '.join(WAIVER_FIELDS)}",
                )
            if key in values:
                raise self.error(key_node, where, f"field '{key}': appears twice")
            values[key] = value_node
        for name in _REQUIRED:
            if name not in values:
                raise self.error(
                    node, where,
                    f"field '{name}' is missing; every waiver names control, reason, owner and expires",
                )
        target = values.get("target")
        return Waiver(
            control=self.control(values["control"], where),
            reason=self.scalar_text(values["reason"], where, "reason"),
            owner=self.scalar_text(values["owner"], where, "owner"),
            expires=self.expiry(values["expires"], where),
            target=self.scalar_text(target, where, "target") if target is not None else "*",
            index=index,
            line=_line(node),
        )

    def top_error(self, node: yaml.Node, message: str) -> WaiverError:
        return WaiverError(f"{self.source}:{_line(node)}: {message}")

    def document(self, root: yaml.Node | None) -> tuple[Waiver, ...]:
        if root is None:
            return ()
        if not isinstance(root, yaml.MappingNode):
            raise self.top_error(root, f"expected a mapping with a 'waivers' list, got {_describe(root)}")
        entries: yaml.Node | None = None
        for key_node, value_node in root.value:
            name = str(key_node.value)
            if name not in _TOP_LEVEL:
                raise self.top_error(key_node, f"unknown key '{name}'; valid keys: {', '.join(_TOP_LEVEL)}")
            if name == "version" and str(value_node.value) != "1":
                raise self.top_error(value_node, f"version: expected 1, got {_describe(value_node)}")
            if name == "waivers":
                entries = value_node
        if entries is None or (isinstance(entries, yaml.ScalarNode) and entries.tag.endswith(":null")):
            return ()
        if not isinstance(entries, yaml.SequenceNode):
            raise self.top_error(entries, f"waivers: expected a list, got {_describe(entries)}")
        waivers = tuple(self.entry(node, i) for i, node in enumerate(entries.value))
        seen: dict[tuple[str, str], Waiver] = {}
        for waiver in waivers:
            key = (waiver.control, waiver.target)
            if key in seen:
                raise WaiverError(
                    f"{self.source}:{waiver.line}: waivers[{waiver.index}]: repeats "
                    f"{seen[key].label}: same control and target; keep one entry"
                )
            seen[key] = waiver
        return waivers


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "nothing (null)" if node.tag.endswith(":null") else repr(node.value)


def parse_waivers(text: str, source: str, *, max_days: int, on: dt.date) -> tuple[Waiver, ...]:
    """Validate waiver YAML ``text`` (named ``source`` in errors) judged on the date ``on``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        check_tree(root, source)
    except StrictYamlError as exc:
        raise WaiverError(str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise WaiverError(f"{source}{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise WaiverError(f"{source}: not valid YAML: {exc}") from None
    return _Parser(source, max_days, on).document(root)


def load_waivers(path: Path, *, max_days: int, on: dt.date | None = None) -> WaiverSet:
    """Read and validate the waiver file at ``path``."""
    read = read_text_file(path, "waiver file")
    if isinstance(read, str):
        raise WaiverError(read)
    waivers = parse_waivers(read.text, str(path), max_days=max_days, on=on or today())
    return WaiverSet(source=str(path), sha256=read.sha256, waivers=waivers)
