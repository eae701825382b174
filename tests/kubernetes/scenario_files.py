"""Build runnable copies of the Kubernetes scenarios: base folder, overlays and fresh timestamps.

See ``scenarios/README.md``: an overlay file replaces the base file of the same name (an
empty one deletes it), and objects annotated ``scenario.secagent.test/written-days-ago``
get their creation time (and a VulnerabilityReport its ``report.updateTimestamp``) set
that many days before now, so that "fresh" stays fresh however old the repository gets.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import yaml

SCENARIOS = Path(__file__).parent / "scenarios"
HARDENED = SCENARIOS / "hardened"
DEFAULT_HELM = SCENARIOS / "default-helm"
MISCONFIGURED = SCENARIOS / "misconfigured"
POLICY = SCENARIOS / "policy.yaml"
AGE_ANNOTATION = "scenario.secagent.test/written-days-ago"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json", ".cfg")
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def overlays() -> list[str]:
    """The control IDs that have a misconfiguration overlay (folder names)."""
    return sorted(p.name for p in MISCONFIGURED.iterdir() if p.is_dir())


def _stamp(obj: Any, now: dt.datetime) -> bool:
    if not isinstance(obj, dict):
        return False
    if str(obj.get("kind", "")).endswith("List") and isinstance(obj.get("items"), list):
        return any([_stamp(item, now) for item in obj["items"]])
    metadata = obj.get("metadata") or {}
    days = (metadata.get("annotations") or {}).get(AGE_ANNOTATION)
    if days is None:
        return False
    when = (now - dt.timedelta(days=float(days))).strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata["creationTimestamp"] = when
    if obj.get("kind") == "VulnerabilityReport":
        obj.setdefault("report", {})["updateTimestamp"] = when
    return True


def _stamp_file(path: Path, now: dt.datetime) -> None:
    text = path.read_text(encoding="utf-8")
    if AGE_ANNOTATION not in text:
        return
    documents = list(yaml.load_all(text, Loader=_LOADER))
    changed = [_stamp(document, now) for document in documents]
    if any(changed):
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        path.write_text(yaml.dump_all(documents, Dumper=dumper, sort_keys=False), encoding="utf-8")


def _removes(path: Path) -> bool:
    """Whether an overlay file holds no document (only comments): it deletes the base file."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        return False
    lines = path.read_text(encoding="utf-8").splitlines()
    return all(not line.strip() or line.lstrip().startswith("#") or line.strip() == "---" for line in lines)


def materialize(dest: Path, *layers: Path, now: dt.datetime | None = None) -> Path:
    """Copy ``layers`` (base first) into ``dest`` and stamp the relative timestamps.

    Only manifest files and ``apiserver.cfg`` are copied (a README is not a manifest);
    an overlay YAML file without documents (comments only) deletes the file of that name.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    dest.mkdir(parents=True, exist_ok=True)
    for index, layer in enumerate(layers):
        for source in sorted(layer.iterdir()):
            if not source.is_file() or source.suffix.lower() not in MANIFEST_SUFFIXES:
                continue
            target = dest / source.name
            if index > 0 and _removes(source):
                target.unlink(missing_ok=True)
            else:
                shutil.copyfile(source, target)
    for path in dest.iterdir():
        if path.suffix.lower() in (".yaml", ".yml"):
            _stamp_file(path, now)
    return dest
