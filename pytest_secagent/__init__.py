"""pytest-secagent: the customer-environment security baselines of a data-platform agent as pytest tests.

The public names for writing checks of your own are exported here; the plugin itself is
``pytest_secagent.plugin``, loaded by pytest through the ``secagent`` entry point.
"""

from __future__ import annotations

from pytest_secagent._version import __version__
from pytest_secagent.evidence import ControlFailed, Evidence
from pytest_secagent.model import Control, Outcome, Severity
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable, not_observable
from pytest_secagent.policy import Policy, PolicyError, load_policy
from pytest_secagent.targets import Target, TargetError, TargetKind, parse_target

__all__ = [
    "Control",
    "ControlFailed",
    "Evidence",
    "EvidenceUnavailable",
    "Outcome",
    "Policy",
    "PolicyError",
    "Severity",
    "Target",
    "TargetError",
    "TargetKind",
    "__version__",
    "load_policy",
    "not_applicable",
    "not_observable",
    "parse_target",
]
