from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pytest_secagent.policy import Policy, PolicyError, load_policy, parse_policy

BASELINE_FIREWALL_BLOCK = (
    "firewall_rules:  \n"
    "  outbound_allowed:  \n"
    '    - destination: "*.atlan.com"  \n'
    "      port: 443  \n"
    "      protocol: HTTPS  \n"
    '    - destination: "*.atlan.com"   \n'
    "      port: 443  \n"
    "      protocol: gRPC/TLS  \n"
    "        \n"
    "  inbound_blocked:  \n"
    "    - all_traffic: DENY  # No inbound connections to agent  \n"
)


def test_defaults_come_from_the_baselines() -> None:
    policy = Policy()
    assert policy.versions.kubernetes_min == "1.24"
    assert policy.versions.docker_min == "20.10"
    assert policy.versions.podman_min == "4.0"
    assert policy.tls.min_version == "TLSv1.2"
    assert policy.credentials.rotation_max_days == 90
    assert [(r.destination, r.port, r.protocol) for r in policy.firewall_rules.outbound_allowed] == [
        ("*.atlan.com", 443, "HTTPS"),
        ("*.atlan.com", 443, "gRPC/TLS"),
    ]
    assert [r.all_traffic for r in policy.firewall_rules.inbound_blocked] == ["DENY"]
    assert policy.tls.cert_min_days_left == 14
    assert policy.tls.cert_warn_days_left == 30
    assert policy.assessment.max_age_days == 365
    assert policy.vulnerability.scan_max_age_days == 7
    assert policy.logging.retention_min_days == 90


def test_the_baseline_firewall_block_is_accepted_as_written() -> None:
    policy = parse_policy(BASELINE_FIREWALL_BLOCK, "secagent.yaml")
    assert policy.firewall_rules == Policy().firewall_rules


def test_empty_file_is_the_defaults() -> None:
    assert parse_policy("", "p.yaml") == Policy()
    assert parse_policy("# nothing\n", "p.yaml") == Policy()


def test_versions_keep_their_text() -> None:
    policy = parse_policy("versions:\n  docker_min: 20.10\n  kubernetes_min: 1.30\n", "p.yaml")
    assert policy.versions.docker_min == "20.10"
    assert policy.versions.kubernetes_min == "1.30"


def test_dates_parse_from_yaml_and_strings() -> None:
    policy = parse_policy(
        "assessment:\n  network_review:\n    date: 2026-03-01\n"
        "incident_response:\n  last_exercise_date: '2026-02-01'\n",
        "p.yaml",
    )
    assert policy.assessment.network_review.date == dt.date(2026, 3, 1)
    assert policy.incident_response.last_exercise_date == dt.date(2026, 2, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tls:\n  min_version: TLSv1.0\n",
            "p.yaml:2: key 'tls.min_version': expected one of 'TLSv1.2', 'TLSv1.3', got 'TLSv1.0'",
        ),
        ("agent:\n  namespace: [a, b]\n", "p.yaml:2: key 'agent.namespace': expected a string, got a list"),
        (
            "\n\nnetwork:\n  management_ports: [22, ssh]\n",
            "p.yaml:4: key 'network.management_ports[1]': expected an integer, got 'ssh'",
        ),
        (
            "agent:\n  selector:\n    app: [x]\n",
            "p.yaml:3: key 'agent.selector.app': expected a string, got a list",
        ),
        (
            "firewall_rules:\n  outbound_allowed:\n    - destination: x\n      protocol: FTP\n",
            "p.yaml:4: key 'firewall_rules.outbound_allowed[0].protocol': expected one of 'HTTPS', "
            "'gRPC/TLS', 'TLS', 'TCP', 'UDP', 'DNS', got 'FTP'",
        ),
        (
            "firewall_rules:\n  inbound_blocked:\n    - all_traffic: ALLOW\n",
            "p.yaml:3: key 'firewall_rules.inbound_blocked[0].all_traffic': expected one of 'DENY' "
            "(or null), got 'ALLOW'",
        ),
        (
            "run:\n  timeout_seconds: true\n",
            "p.yaml:2: key 'run.timeout_seconds': expected a number, got 'true'",
        ),
        (
            "assessment:\n  network_review:\n    date: last week\n",
            "p.yaml:3: key 'assessment.network_review.date': expected a date (YYYY-MM-DD) (or null), "
            "got 'last week'",
        ),
        ("version: 2\n", "p.yaml:1: key 'version': expected one of 1, got '2'"),
        (
            "tls:\n  min_version: TLSv1.2\ntls:\n  min_version: TLSv1.3\n",
            "p.yaml:3: key 'tls': appears twice (first on line 1); keep one",
        ),
        ("- a\n", "p.yaml:1: key '(top level)': expected a mapping, got a list"),
        
        (
            "tls:\n  cert_min_days_left: 40\n",
            "p.yaml: key 'tls.cert_warn_days_left': must be at least tls.cert_min_days_left (40), got 30",
        ),
        (
            "credentials:\n  rotation_max_days: 365\n",
            "p.yaml: key 'credentials.rotation_max_days': expected 1 to credentials.rotation_hard_max_days "
            "(180), got 365",
        ),
    ],
)
def test_errors_name_line_key_and_expectation(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as excinfo:
        parse_policy(text, "p.yaml")
    assert str(excinfo.value) == message


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(PolicyError) as excinfo:
        parse_policy("tls:\n  min_version: TLSv1.2\nagent: [\n", "p.yaml")
    # The parser's own wording follows (libyaml and pure PyYAML word it differently).
    assert str(excinfo.value).startswith("p.yaml:4: not valid YAML: ")


def test_unknown_key_lists_the_valid_keys() -> None:
    with pytest.raises(PolicyError) as excinfo:
        parse_policy("tls:\n  minimum: TLSv1.3\n", "p.yaml")
    assert str(excinfo.value) == (
        "p.yaml:2: key 'tls.minimum': unknown key; valid keys here: ca_bundle, ca_min_days_left, "
        "cert_min_days_left, cert_warn_days_left, min_version"
    )


def test_yaml_tags_that_build_objects_are_refused() -> None:
    with pytest.raises(PolicyError) as excinfo:
        parse_policy("agent:\n  user: !!python/object/apply:os.system ['true']\n", "p.yaml")
    assert "p.yaml:2:" in str(excinfo.value)
    with pytest.raises(PolicyError) as excinfo:
        parse_policy("agent:\n  user: !!python/name:os.system\n", "p.yaml")
    assert str(excinfo.value) == (
        "p.yaml:2: key 'agent.user': the tag 'tag:yaml.org,2002:python/name:os.system' is not allowed; "
        "only plain YAML values (strings, numbers, booleans, null, dates, lists and mappings) are accepted"
    )


def test_load_policy_reads_file_and_hashes_it(tmp_path: Path) -> None:
    path = tmp_path / "secagent.yaml"
    path.write_text("agent:\n  namespace: atlan\n")
    loaded = load_policy(path)
    assert loaded.policy.agent.namespace == "atlan"
    assert loaded.source == str(path)
    assert len(loaded.sha256) == 64


def test_load_policy_defaults() -> None:
    loaded = load_policy(None)
    assert loaded.source == "built-in defaults"
    assert loaded.policy == Policy()


def test_load_policy_unreadable_and_binary(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"missing.yaml: the policy file does not exist"):
        load_policy(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PolicyError, match=r"bin.yaml: the policy file is not UTF-8 text"):
        load_policy(binary)
