"""The ``secagent`` command: the control catalog, a starter policy, and reports from saved results.

Scanning stays ``pytest --secagent-target ...``; this command only reads and writes files:

* ``secagent controls [--format table|json]``: the catalog (ID, severity, section, target
  kinds, title);
* ``secagent init [PATH]``: a commented starter policy with every attestation to fill in;
* ``secagent report IN.json [IN2.json ...] [--json F] [--junit F] [--html F] [--sarif F]``:
  merge the JSON results of one or more runs (machines, shards) and render them.

Exit status 0 on success, 2 for bad input, with one line that names the file and the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO, get_args

from pytest_secagent.attestations import ATTESTATION_KINDS
from pytest_secagent.catalog import load_catalog, target_kinds_for
from pytest_secagent.policy import PolicyError, load_policy
from pytest_secagent.policy.model import Attestation, SecretStoreType
from pytest_secagent.reporting import (
    FORMAT_LABELS,
    FORMATS,
    MergeError,
    ReportWriteError,
    merge_documents,
    render_reports,
    schema_errors,
    write_reports,
)
from pytest_secagent.reporting.document import SCHEMA_VERSION

__all__ = ["EXIT_BAD_INPUT", "main", "starter_policy"]

EXIT_BAD_INPUT = 2
DEFAULT_POLICY_FILE = "secagent.yaml"
_FIX_INPUT = "give a results file written by pytest --secagent-json"


class CliError(Exception):
    """A user mistake; the message is the one line the command prints."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secagent",
        description="pytest-secagent's catalog, starter policy and reports. Scan with "
        "'pytest --secagent-target URI'.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    controls = commands.add_parser("controls", help="list the control catalog")
    controls.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format (default: table)"
    )
    init = commands.add_parser("init", help="write a commented starter policy file")
    init.add_argument(
        "path", nargs="?", default=DEFAULT_POLICY_FILE, metavar="PATH",
        help=f"where to write it (default: {DEFAULT_POLICY_FILE}); an existing file is never overwritten",
    )
    report = commands.add_parser(
        "report", help="merge JSON results of one or more runs and write JSON, JUnit, HTML or SARIF"
    )
    report.add_argument("inputs", nargs="+", metavar="IN.json", help="results files (--secagent-json)")
    report.add_argument("--json", metavar="FILE", help="write the merged JSON results")
    report.add_argument("--junit", metavar="FILE", help="write JUnit XML")
    report.add_argument("--html", metavar="FILE", help="write the HTML report")
    report.add_argument("--sarif", metavar="FILE", help="write SARIF 2.1.0")
    report.add_argument(
        "--srcroot", metavar="DIR", default=".",
        help="the folder SARIF file locations are relative to (default: the current folder)",
    )
    return parser


def _controls(output_format: str, out: TextIO) -> None:
    catalog = load_catalog()
    rows = [
        {
            "id": c.id,
            "severity": c.severity.value,
            "section": c.section,
            "target_kinds": [k.value for k in target_kinds_for(c)],
            "title": c.title,
            "baseline": c.baseline,
            "mode": c.mode,
            "remediation": c.remediation,
            "references": list(c.references),
        }
        for c in catalog
    ]
    if output_format == "json":
        out.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    columns = ("ID", "severity", "section", "target kinds", "title")
    cells = [(r["id"], r["severity"], r["section"], ",".join(r["target_kinds"]), r["title"]) for r in rows]
    widths = [max(len(columns[i]), *(len(str(c[i])) for c in cells)) for i in range(len(columns) - 1)]
    for line in (columns, *cells):
        head = "  ".join(f"{v!s:<{w}}" for v, w in zip(line[:-1], widths, strict=False))
        out.write(f"{head}  {line[-1]}\n")


def _attestation_block(key: str) -> list[str]:
    kind = ATTESTATION_KINDS[key]
    fields = Attestation.__dataclass_fields__
    docs = {name: fields[name].metadata["doc"] for name in ("by", "date", "evidence_url")}
    return [
        f"  # {kind.title[:1].upper()}{kind.title[1:]} ({kind.control_id}): stale after "
        f"{kind.default_max_age_days} days.",
        f"  {key}:",
        f"    by: null            # {docs['by']}",
        f"    date: null          # {docs['date']}",
        f"    evidence_url: null  # {docs['evidence_url']}",
        f"    # max_age_days: {kind.default_max_age_days}",
    ]


def starter_policy() -> str:
    """The text ``secagent init`` writes: a commented policy with every attestation to fill in."""
    lines = [
        "# pytest-secagent policy file.",
        "#",
        "# Every key is optional: a key left out keeps the baselines' default (the README's",
        "# section 'Policy file' lists them all). Run with: pytest --secagent-policy THIS_FILE",
        "version: 1",
        "",
        "# The procedural controls no probe can prove. Fill in who did each, when, and where the",
        "# evidence is; a control fails while its record is missing, incomplete or too old.",
        "attestations:",
    ]
    for key in ATTESTATION_KINDS:
        lines.extend(_attestation_block(key))
    lines.extend([
        "",
        "# The credential-management validation (SA-ASSESS-002) also needs its design on record:",
        "assessment:",
        "  credential_review:",
        "    secret_store: null       # one of " + ", ".join(get_args(SecretStoreType)),
        "    rotation_max_days: null  # the rotation period the review set (days, at most 180)",
        "    owners: []               # owners of the credential design",
        "    credentials: []          # every agent credential: - {name: ..., owner: ...}",
        "",
        "# Incident-response coordination (SA-OPS-003) also needs its runbook and contacts:",
        "incident_response:",
        "  runbook_url: null       # the agent-specific incident-response runbook",
        "  internal_contact: null  # your internal security contact",
        "  atlan_contact: null     # Atlan's security contact",
        "",
        "# What to check when the command line and the ini file do not say:",
        "# run:",
        "#   targets:",
        "#     - local://",
        "#     - k8s://my-context",
        "#   timeout_seconds: 10",
        "",
        "# Where the agent runs, if not in the defaults:",
        "# agent:",
        "#   namespace: atlan-agent",
        "",
    ])
    return "\n".join(lines)


def _init(path_text: str, out: TextIO) -> None:
    path = Path(path_text)
    if path.is_dir():
        raise CliError(f"{path} is a directory; give a file name such as {path / DEFAULT_POLICY_FILE}")
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(starter_policy())
    except FileExistsError:
        raise CliError(
            f"{path} exists and is left as it is; edit it, or give another path: secagent init NEW.yaml"
        ) from None
    except OSError as exc:
        raise CliError(f"could not write {path}: {exc.strerror or exc}; give a writable path") from None
    try:
        load_policy(path)
    except PolicyError as exc:  # pragma: no cover - the starter policy is tested to load
        raise CliError(f"the starter policy does not load: {exc}") from None
    out.write(
        f"secagent: wrote {path}; fill in the attestations, then run "
        f"pytest --secagent-policy {path} --secagent-target URI\n"
    )


def _read_document(path_text: str) -> dict[str, Any]:
    path = Path(path_text)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}; {_FIX_INPUT}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text; {_FIX_INPUT}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not JSON (line {exc.lineno}: {exc.msg}); {_FIX_INPUT}") from None
    if not isinstance(document, dict):
        raise CliError(f"{path} is not a secagent results file (not a JSON object); {_FIX_INPUT}")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CliError(
            f"{path} has schema_version {version!r}, this secagent reads version {SCHEMA_VERSION}; "
            "render it with the pytest-secagent version that wrote it"
        )
    errors = schema_errors(document, limit=1)
    if errors:
        raise CliError(f"{path} is not a valid secagent results file ({errors[0]}); {_FIX_INPUT}")
    return document


def _report(args: argparse.Namespace, out: TextIO) -> None:
    outputs = {kind: Path(value) for kind in FORMATS if (value := getattr(args, kind)) is not None}
    if not outputs:
        raise CliError("report: nothing to write; add at least one of --json, --junit, --html, --sarif FILE")
    seen: dict[Path, str] = {}
    for kind, path in outputs.items():
        resolved = path.resolve()
        if resolved in seen:
            raise CliError(
                f"report: --{seen[resolved]} and --{kind} both name {path}; give each its own file"
            )
        if path.is_dir():
            raise CliError(f"report: --{kind} {path} is a directory; give a file name")
        seen[resolved] = kind
    inputs = [(name, _read_document(name)) for name in args.inputs]
    try:
        document = merge_documents(inputs)
    except MergeError as exc:
        raise CliError(f"report: {exc}") from None
    srcroot = Path(args.srcroot)
    if not srcroot.is_dir():
        raise CliError(
            f"report: --srcroot {srcroot} is not a folder; give the folder file locations start at"
        )
    try:
        write_reports(render_reports(document, outputs, srcroot))
    except ReportWriteError as exc:
        raise CliError(f"report: {exc}; nothing was written") from None
    for kind, path in outputs.items():
        out.write(f"secagent: wrote {FORMAT_LABELS[kind]} to {path}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``secagent`` command; return its exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "controls":
            _controls(args.format, sys.stdout)
        elif args.command == "init":
            _init(args.path, sys.stdout)
        else:
            _report(args, sys.stdout)
    except CliError as exc:
        sys.stderr.write(f"secagent: error: {exc}\n")
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # The reader (head, less) stopped reading: not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover - the console script calls main()
    sys.exit(main())
