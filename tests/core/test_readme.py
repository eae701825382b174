"""The README stays true to the code: the schema table, the options and the ini keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_secagent.policy.docs import schema_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_policy_schema_table_matches_the_model() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- policy-schema:start -->\n(.*?)\n<!-- policy-schema:end -->", text, re.DOTALL)
    assert match is not None, "README lost its policy schema markers"
    assert match.group(1) == schema_table(), "regenerate with: python -m pytest_secagent.policy.docs"


def test_every_option_and_ini_key_is_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = README.read_text(encoding="utf-8")
    options = set(re.findall(r"(--secagent-[a-z-]+)", result.stdout.str()))
    ini_keys = set(re.findall(r"^  (secagent_[a-z_]+) ", result.stdout.str(), re.MULTILINE))
    assert options, "no --secagent options in --help"
    assert ini_keys, "no secagent ini keys in --help"
    missing = sorted(o for o in options | ini_keys if f"`{o}" not in text)
    assert not missing, f"README does not document: {', '.join(missing)}"
