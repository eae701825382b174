"""Check that the built wheel carries the suites, the catalog and the typing marker."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

REQUIRED = (
    "pytest_secagent/plugin.py",
    "pytest_secagent/controls.yaml",
    "pytest_secagent/py.typed",
    "pytest_secagent/suites/__init__.py",
    "pytest_secagent/suites/test_assessment.py",
    "pytest_secagent/suites/test_incident_response.py",
    "pytest_secagent/suites/test_attestations.py",
    "pytest_secagent/suites/test_host.py",
    "pytest_secagent/suites/test_container_engine.py",
    "pytest_secagent/suites/test_kubernetes_workloads.py",
    "pytest_secagent/suites/test_network.py",
    "pytest_secagent/suites/test_drift.py",
    "pytest_secagent/suites/test_isolation.py",
    "pytest_secagent/schemas/results-v1.json",
)


def missing_from(wheel: Path) -> list[str]:
    """The required members the wheel lacks."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = [name for name in REQUIRED if name not in names]
    suites = sorted(n for n in names if n.startswith("pytest_secagent/suites/test_"))
    print(f"{wheel.name}: {len(suites)} suite modules: {', '.join(Path(s).name for s in suites)}")
    entry = next((n for n in names if n.endswith("entry_points.txt")), None)
    if entry is None:
        missing.append("entry_points.txt")
    else:
        with zipfile.ZipFile(wheel) as archive:
            text = archive.read(entry).decode()
        if "secagent = pytest_secagent.plugin" not in text:
            missing.append("pytest11 entry point 'secagent'")
    return missing


def main(dist: str) -> int:
    """Check every wheel in ``dist``; return a shell exit status."""
    wheels = sorted(Path(dist).glob("*.whl"))
    if not wheels:
        print(f"no wheel in {dist}")
        return 1
    status = 0
    for wheel in wheels:
        missing = missing_from(wheel)
        if missing:
            print(f"{wheel.name} lacks: {', '.join(missing)}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
