#!/usr/bin/env bash
# Install the built wheel (not editable) into a fresh virtualenv and run the main job from an
# empty directory: it must exit 0 (all passed) or 1 (findings), with a control ID per testcase.
set -euo pipefail
work="$1"
python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/*.whl
run="$(mktemp -d)"
trap 'rm -rf "$run"' EXIT
cd "$run"
set +e
"$work/venv/bin/pytest" --secagent-target local:// --junitxml=j.xml --html=r.html -p no:cacheprovider -q
status=$?
set -e
echo "main job exit status: $status"
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then
    echo "the main job must exit 0 (compliant) or 1 (findings), not $status" >&2
    exit 1
fi
"$work/venv/bin/python" - <<'PY'
import re
import sys
import xml.etree.ElementTree as ET

cases = list(ET.parse("j.xml").getroot().iter("testcase"))
ids = [p.get("value", "") for c in cases for p in c.iter("property") if p.get("name") == "control_id"]
if not cases or len(ids) != len(cases) or not all(re.fullmatch(r"SA-[A-Z]+-\d{3}", i) for i in ids):
    sys.exit(f"every testcase needs a control_id property: {len(cases)} cases, ids {ids}")
html = open("r.html", encoding="utf-8").read()
if "SA-ASSESS-001" not in html:
    sys.exit("the HTML report does not show the control IDs")
print(f"{len(cases)} testcases, each with a control_id; HTML report shows them")
PY
