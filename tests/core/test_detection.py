"""Credential detection and report redaction: one engine, judged in both directions.

Every credential shape must be found (recall) and masked in reports; every benign shape must
be left alone (precision), in the checks and in the reports. The values are made up and
assembled at run time.
"""

from __future__ import annotations

import base64
import string
from dataclasses import dataclass

import pytest

from pytest_secagent.detection import credential_kinds, find_credentials, is_reference, secret_named
from pytest_secagent.evidence import Evidence
from pytest_secagent.redaction import REDACTED, Redactor, redact

ALNUM = string.ascii_letters + string.digits


def made_up(length: int, alphabet: str = ALNUM, seed: int = 7) -> str:
    """A deterministic, random-looking string (no real credential)."""
    state = seed
    out = []
    for _ in range(length):
        state = (state * 1103515245 + 12345) % 2**31
        out.append(alphabet[state % len(alphabet)])
    return "".join(out)


HEX = "0123456789abcdef"
AZURE_KEY = base64.b64encode(bytes(made_up(64, seed=3), "ascii")).decode()  # 88 characters
BATCH_KEY = base64.b64encode(bytes(made_up(64, seed=5), "ascii")).decode()
AWS_ID = "AKIA" + made_up(16, string.ascii_uppercase + string.digits)
AWS_SECRET = made_up(40, ALNUM + "/+", seed=11)
JWT_VALUE = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzY2VuYXJpby1vbmx5In0." + made_up(22, seed=13)
GITHUB = "ghp_" + made_up(36, seed=17)
GITLAB = "glpat-" + made_up(20, seed=19)
SLACK_HOOK = "https://hooks.slack.com/services/T" + made_up(8, seed=2) + "/B" + made_up(8, seed=4) + "/"
SLACK_HOOK += made_up(24, seed=6)
SLACK_BOT = (
    "xoxb-" + made_up(12, string.digits) + "-" + made_up(13, string.digits) + "-" + made_up(24, seed=8)
)
STRIPE = "sk_live_" + made_up(24, seed=23)
BEARER = made_up(32, ALNUM + "-._", seed=29)
BASIC = base64.b64encode(b"agent:s3cr3").decode()
PEM_BODY = "\n".join(made_up(64, ALNUM + "+/", seed=s) for s in (31, 37)) + "\n"
HEX_KEY = made_up(64, HEX, seed=41)
ARTIFACTORY = "AKC" + made_up(70, seed=51)
MAILCHIMP = made_up(32, HEX, seed=53) + "-us12"
IBM_IAM = made_up(44, ALNUM + "_-", seed=57)
COS_HMAC = made_up(48, HEX, seed=67)
SOFTLAYER = made_up(64, string.ascii_lowercase + string.digits, seed=59)
TWILIO = "SK" + made_up(32, HEX, seed=71)
SENDGRID = "SG." + made_up(22, seed=73) + "." + made_up(43, seed=79)
DIGEST = made_up(64, HEX, seed=43)


@dataclass(frozen=True)
class Case:
    """A setting (``key`` holding ``text``), the finding kind, and the credential inside it."""

    key: str
    text: str
    kind: str
    secret: str

    def __str__(self) -> str:
        return f"{self.key}:{self.kind}"


FOUND = [
    Case("NOTES", f"key {AWS_ID} in use", "AWS Access Key", AWS_ID),
    Case("AWS_SECRET_ACCESS_KEY", AWS_SECRET, "secret-named AWS_SECRET_ACCESS_KEY", AWS_SECRET),
    Case("settings.py", f'aws_secret_key = "{AWS_SECRET}"', "AWS Access Key", AWS_SECRET),
    Case("GH", GITHUB, "GitHub Token", GITHUB),
    Case("CI", GITLAB, "GitLab Token", GITLAB),
    Case("ALERTS_WEBHOOK", SLACK_HOOK, "Slack Token", SLACK_HOOK),
    Case("SLACK", SLACK_BOT, "Slack Token", SLACK_BOT),
    Case("STRIPE", STRIPE, "Stripe Access Key", STRIPE),
    Case("ATLAN_TOKEN", JWT_VALUE, "JSON Web Token", JWT_VALUE),
    Case("ARTIFACTORY", ARTIFACTORY, "Artifactory Credentials", ARTIFACTORY),
    Case("MAILCHIMP", MAILCHIMP, "Mailchimp Access Key", MAILCHIMP),
    Case("settings.ini", f"ibm_cloud_iam_api_key = {IBM_IAM}", "IBM Cloud IAM Key", IBM_IAM),
    Case("cos.ini", f"cos_hmac_secret_access_key = {COS_HMAC}", "IBM COS HMAC Credentials", COS_HMAC),
    Case("SOFTLAYER", f"https://api.softlayer.com/soap/v3/{SOFTLAYER}", "SoftLayer Credentials", SOFTLAYER),
    Case("TWILIO", TWILIO, "Twilio API Key", TWILIO),
    Case("SENDGRID", SENDGRID, "SendGrid API Key", SENDGRID),
    Case(
        "key.pem",
        f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----\n",
        "Private Key",
        PEM_BODY,
    ),
    Case("ec.pem", f"-----BEGIN EC PRIVATE KEY-----\n{PEM_BODY}", "Private Key", PEM_BODY),
    Case("id_ed25519", f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}", "Private Key", PEM_BODY),
    Case("enc.pem", f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{PEM_BODY}", "Private Key", PEM_BODY),
    Case(
        "STORAGE",
        f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net",
        "Azure Storage Account access key",
        AZURE_KEY,
    ),
    Case("AZURE_STORAGE_KEY", AZURE_KEY, "secret-named AZURE_STORAGE_KEY", AZURE_KEY),
    Case("AZURE_BATCH_ACCOUNT_KEY", BATCH_KEY, "secret-named AZURE_BATCH_ACCOUNT_KEY", BATCH_KEY),
    Case("STORAGE_BLOB", AZURE_KEY, "Base64 High Entropy String", AZURE_KEY),
    Case("HMAC_KEY", HEX_KEY, "Hex High Entropy String", HEX_KEY),
    Case("AUTH_HEADER", f"Bearer {BEARER}", "Bearer token", BEARER),
    Case("args", f"curl -H 'Authorization: Bearer {BEARER}' https://x", "Bearer token", BEARER),
    Case("HEADERS", f"Authorization: Basic {BASIC}", "Basic authorization header", BASIC),
    Case("DATABASE_URL", "postgres://agent:pw@db:5432/x", "Basic Auth Credentials", "pw"),
    Case("BROKER", "amqps://agent:s3cr3tpass@mq.internal:5671/", "Basic Auth Credentials", "s3cr3tpass"),
    Case("DB_PASSWORD", "s3cr3", "secret-named DB_PASSWORD", "s3cr3"),
    Case("DB_PASSWORD", "x1", "secret-named DB_PASSWORD", "x1"),
    Case("PGPASSWORD", "123456", "secret-named PGPASSWORD", "123456"),
    Case("client_secret", "abc", "secret-named client_secret", "abc"),
    Case("ATLAN_API_TOKEN", "t0k3n", "secret-named ATLAN_API_TOKEN", "t0k3n"),
    Case("vaultToken", "hvs.s3cr3", "secret-named vaultToken", "hvs.s3cr3"),
    Case("config.yaml", "source:\n  password: hunter2\n", "secret-named setting", "hunter2"),
    Case("config.yaml", "db:\n  user: agent\n  password: s3cr3\n", "secret-named setting", "s3cr3"),
    Case("app.properties", "spring.datasource.password=s3cr3\n", "secret-named setting", "s3cr3"),
    Case("config.json", '{"user": "agent", "password": "s3cr3"}', "secret-named setting", "s3cr3"),
    Case("agent.ini", "[db]\npasswd = s3cr3\n", "secret-named setting", "s3cr3"),
    Case("args", "--config /etc/agent.yaml --db-password s3cr3", "secret-named setting", "s3cr3"),
    Case("args", "--api-key=abc123 --verbose", "secret-named setting", "abc123"),
]

NOT_FOUND = [
    ("ATLAN_SECRET_STORE", "atlan-secretstore"),
    ("secret_store", "vault"),
    ("SECRET_STORE_TYPE", "vault"),
    ("PASSWORD_TYPE", "bcrypt"),
    ("TOKEN_TYPE", "Bearer"),
    ("AWS_REGION", "eu-west-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("TOKEN_FILE", "/var/run/secrets/token"),
    ("CONFIG_PATH", "/etc/atlan/secret_access_key.yaml"),
    ("CREDENTIALS_FILE", "secret_access_key.yaml"),
    ("GOOGLE_APPLICATION_CREDENTIALS", "/var/run/gcp/key.json"),
    ("DB_PASSWORD", "${DB_PASSWORD}"),
    ("DB_PASSWORD", "$(DB_PASSWORD)"),
    ("DB_PASSWORD", "{{ .Values.db.password }}"),
    ("API_KEY", "<your-api-key>"),
    ("DB_PASSWORD", "vault:secret/data/db#password"),
    ("DB_PASSWORD", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"),
    ("DB_PASSWORD", "https://acme.vault.azure.net/secrets/db"),
    ("DB_PASSWORD", ""),
    ("DB_PASSWORD_SECRET_NAME", "db-credentials"),
    ("SECRET_KEY_REF", "db-credentials"),
    ("ATLAN_TOKEN_REFRESH_SECONDS", "300"),
    ("PASSWORD_MIN_LENGTH", "12"),
    ("SECRET_ROTATION_DAYS", "90"),
    ("TOKEN_URL", "https://acme.atlan.com/oauth/token"),
    ("ENABLE_SECRET_SCAN", "true"),
    ("SASL_MECHANISM", "PLAIN"),
    ("AUTHOR", "bob"),
    ("LOG_FORMAT", "json"),
    ("IMAGE_DIGEST", DIGEST),
    ("GIT_COMMIT", DIGEST[:40]),
    ("RUN_ID", "123e4567-e89b-12d3-a456-426614174000"),
    ("image", f"public.ecr.aws/atlanhq/app@sha256:{DIGEST}"),
    ("K8S_PATH", "apps/v1/namespaces/atlan-agent/deployments/atlan-agent-controller"),
    ("NOTES", "Authenticate with a Bearer token from the secret store"),
    ("NOTES", "Basic authentication is disabled"),
    ("ca.crt", f"-----BEGIN CERTIFICATE-----\n{PEM_BODY}-----END CERTIFICATE-----\n"),
    ("config.yaml", "password: ${DB_PASSWORD}\nsecretName: agent\ntoken_path: /var/run/token\n"),
    (
        "config.yaml",
        "atlan:\n  domain: https://acme.atlan.com\nobjectStore:\n  endpoint: https://s3.eu-west-1.amazonaws.com\n"
        "  bucket: acme-atlan-agent\nsecretStore: atlan-secretstore\nlogging:\n  level: info\n",
    ),
    ("args", "--config /etc/atlan/config.yaml --secret-store vault --token-file /var/run/token"),
]

REPORT_TEXT = [
    "secret_store: vault present",
    "declared secret store (assessment.credential_review.secret_store): kubernetes",
    "could not verify SA-SECRET-002 on k8s:prod/atlan-agent: no agent pods found (namespace atlan-agent)",
    "SA-SECRET-002: no agent pods found",
    "SA-SECRET-002 [critical] on manifests:deploy: no agent pods found",
    "/etc/atlan/secret_access_key.yaml: mode 0600, owner 'agent'",
    "/etc/atlan/secret_access_key.yaml not accessible to others: expected no permission bits; observed mode 0640",
    "credentials.files: secret_access_key.yaml",
    "password: not set",
    "Deployment/agent container app: service-account token automount: false (from pod spec)",
    "ServiceAccount default in atlan-agent: token automount: unset (true)",
    "Deployment/agent container app: static cloud keys: none",
    "plaintext credentials in the agent's configuration: none in 12 settings",
    "ConfigMap/cfg key DB_PASSWORD (literal value of secret-named DB_PASSWORD)",
    "legacy service-account token Secrets in atlan-agent: none",
    "Secret/atlan-client age: 9 days (last written 2025-02-20)",
    f"image public.ecr.aws/atlanhq/app@sha256:{DIGEST} is pinned",
    "TLSv1.2 accepted by 10.0.0.4:443 with cipher ECDHE-RSA-AES256-GCM-SHA384",
    "Dapr Component/k (secretstores.kubernetes): scopes: none",
    "envFrom Secret cloud: its key names are not read (Secrets are read as metadata only)",
    "api_key: ***",
    "ExternalSecret/db from arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
    "SecretProviderClass/db (vault): objects secret/data/db#password",
]


@pytest.mark.parametrize("case", FOUND, ids=str)
def test_credential_found(case: Case) -> None:
    kinds = credential_kinds(case.key, case.text)
    assert any(case.kind in kind for kind in kinds), kinds


@pytest.mark.parametrize("case", FOUND, ids=str)
def test_found_credential_is_masked_in_reports(case: Case) -> None:
    for line in (f"{case.key}: {case.text}", f"{case.key}={case.text}"):
        masked = redact(line)
        assert case.secret not in masked
        assert REDACTED in masked
        assert masked.startswith(case.key)


@pytest.mark.parametrize(("key", "text"), NOT_FOUND)
def test_not_a_credential(key: str, text: str) -> None:
    assert credential_kinds(key, text) == []


@pytest.mark.parametrize(("key", "text"), NOT_FOUND)
def test_not_a_credential_is_not_masked(key: str, text: str) -> None:
    for line in (f"{key}: {text}", f"{key}={text}"):
        assert redact(line) == line


@pytest.mark.parametrize("text", REPORT_TEXT)
def test_report_text_without_credentials_reads_as_written(text: str) -> None:
    assert redact(text) == text
    assert find_credentials(text) == ()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DB_PASSWORD", True),
        ("client_secret", True),
        ("AZURE_STORAGE_KEY", True),
        ("SECRET_ADMIN", True),
        ("secret_store", False),
        ("passwordFile", False),
        ("secretKeyRef", False),
        ("secret_access_key.yaml", False),
        ("SA-SECRET-002", False),
        ("enable_secret_scan", False),
        ("AWS_ACCESS_KEY_ID", False),
    ],
)
def test_secret_names(name: str, expected: bool) -> None:
    assert secret_named(name) is expected


@pytest.mark.parametrize(
    "value", ["${X}", "$(X)", "$X", "{{ .Values.x }}", "<token>", "/run/secrets/x", "vault:kv/x#y"]
)
def test_references(value: str) -> None:
    assert is_reference(value)


def test_only_the_value_is_masked() -> None:
    line = f"AWS_ACCESS_KEY_ID={AWS_ID} password: hunter2 secret_store: vault ({JWT_VALUE})"
    assert redact(line) == "AWS_ACCESS_KEY_ID=*** password: *** secret_store: vault (***)"


def test_user_patterns_add_to_the_built_in_ones() -> None:
    redactor = Redactor([r"corp-[0-9]+"])
    assert redactor("id corp-42 DB_PASSWORD=s3cr3 no agent pods found") == (
        "id *** DB_PASSWORD=*** no agent pods found"
    )


def test_evidence_keeps_names_and_masks_values() -> None:
    evidence = Evidence()
    evidence.expect("secret_store", expected="vault", actual="vault present", ok=True)
    evidence.expect("env", expected="none", actual=f"AUTH=Bearer {BEARER}", ok=False)
    assert evidence.summary().splitlines() == [
        "[ok] secret_store: expected vault; observed vault present",
        "[fail] env: expected none; observed AUTH=Bearer ***",
    ]


TARGET = ("--secagent-no-suites", "--secagent-target", "tls://127.0.0.1:9")


def test_reports_mask_credentials_and_nothing_else(pytester: pytest.Pytester) -> None:
    """A failing control's terminal and JUnit output: the credential is masked, the words are not."""
    pytester.makepyfile(
        test_controls=f"""
        import pytest
        @pytest.mark.secagent_control("SA-NET-007")
        def test_tls(secagent_target, secagent_evidence):
            secagent_evidence.expect("secret_store", expected="vault", actual="vault present", ok=True)
            secagent_evidence.expect(
                "env", expected="no agent pods found", actual="DB_PASSWORD=s3cr3", ok=False
            )
            assert False, "no agent pods found; Authorization: Bearer {BEARER}"
        """
    )
    result = pytester.runpytest(*TARGET, "--junitxml=j.xml")
    result.assert_outcomes(failed=1)
    for output in (result.stdout.str(), (pytester.path / "j.xml").read_text()):
        assert "s3cr3" not in output
        assert BEARER not in output
        assert "*** agent pods found" not in output
        assert "secret_store: ***" not in output
        assert "no agent pods found" in output
