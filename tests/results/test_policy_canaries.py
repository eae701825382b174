"""Credentials written in the policy file or held in the environment appear in no output, at any verbosity.

Canary credentials of the shapes users really paste into a policy (a proxy URL with a password,
a database URL, a chat webhook, a code-host token, a cloud key) are placed in every free-text
policy field the built-in suites read; the procedural and endpoint suites run on them at every
verbosity, with locals shown and long tracebacks, writing every report. No canary may appear in
the terminal, the JUnit, the HTML or the JSON.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Each canary is split so that no credential-shaped text sits in this file as one literal.
PROXY_PASSWORD = "Pr0xy" + "Canary77x"
DB_PASSWORD = "DbCan" + "ary99zz"
WEBHOOK_SECRET = "XXXXCANARY" + "XXXXXXXXXXXXXX"
GITHUB_TOKEN = "ghp_" + "CANARY0123456789abcdefghijklmnopqrst"
AWS_KEY = "AKIA" + "CANARY7EXAMPLE23"

ENV_SECRET = "envCan" + "ary0Secret9Value"
ENV_TOKEN = "ghp_" + "ENVCANARY23456789abcdefghijklmnopqrs"

CANARIES = (PROXY_PASSWORD, DB_PASSWORD, WEBHOOK_SECRET, GITHUB_TOKEN, AWS_KEY, ENV_SECRET, ENV_TOKEN)

POLICY = f"""
network:
  proxy: http://agent:{PROXY_PASSWORD}@proxy.example.com:3128
  production_cidrs: [10.0.0.0/8]
assessment:
  network_review:
    date: 2000-01-01
    reviewer: https://hooks.slack.com/services/T00000000/B00000000/{WEBHOOK_SECRET}
    artifact_url: https://hooks.slack.com/services/T00000000/B00000000/{WEBHOOK_SECRET}
incident_response:
  runbook_url: postgres://admin:{DB_PASSWORD}@db.example.com:5432/runbooks
  internal_contact: token {GITHUB_TOKEN}
  log_preservation: s3 with key {AWS_KEY}
attestations:
  access_review:
    by: {GITHUB_TOKEN}
    date: 2000-01-01
    evidence_url: https://github.com/acme/reviews?access_token={GITHUB_TOKEN}
"""


@pytest.mark.parametrize("verbosity", [[], ["-v"], ["-vvv", "-l", "--tb=long", "-rA"]])
def test_policy_credentials_reach_no_output(
    pytester: pytest.Pytester, verbosity: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Credentials in the environment of the run, as CI systems hold them.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    monkeypatch.setenv("GITHUB_TOKEN", ENV_TOKEN)
    pytester.makefile(".yaml", policy=POLICY)
    result = pytester.runpytest(
        "--secagent-policy", "policy.yaml", "--secagent-target", "tls://127.0.0.1:9",
        "--secagent-timeout", "2", "--junitxml", "r.xml", "--secagent-json", "r.json", "--html", "r.html",
        "-p", "no:cacheprovider", *verbosity,
    )
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    outputs = {
        "terminal": result.stdout.str() + result.stderr.str(),
        **{name: Path(pytester.path / name).read_text(encoding="utf-8") for name in ("r.xml", "r.json", "r.html")},
    }
    leaks = [(where, canary) for where, text in outputs.items() for canary in CANARIES if canary in text]
    assert leaks == []
