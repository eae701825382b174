"""The declared policy: baselines' defaults, overlaid by the user's policy file."""

from __future__ import annotations

from pytest_secagent.policy.loader import LoadedPolicy, PolicyError, load_policy, parse_policy
from pytest_secagent.policy.model import Policy

__all__ = ["LoadedPolicy", "Policy", "PolicyError", "load_policy", "parse_policy"]
