"""Stash keys shared by the plugin's modules."""

from __future__ import annotations

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.markers import ControlBinding
from pytest_secagent.model import Outcome

BINDING_KEY = pytest.StashKey[ControlBinding]()
EVIDENCE_KEY = pytest.StashKey[Evidence]()
OUTCOME_KEY = pytest.StashKey[Outcome]()
DETAIL_KEY = pytest.StashKey[str]()
