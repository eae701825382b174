"""The policy file's schema, as typed, frozen dataclasses with documented defaults.

Every field's ``metadata["doc"]`` documents it; the README's schema table is generated
from these docstrings. Defaults come from the baselines (see the control catalog,
section 7); a policy file only needs the keys it changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

TlsVersionName = Literal["TLSv1.2", "TLSv1.3"]
SecretStoreType = Literal[
    "aws-secrets-manager",
    "azure-key-vault",
    "gcp-secret-manager",
    "hashicorp-vault",
    "kubernetes",
    "env",
]
FirewallProtocol = Literal["HTTPS", "gRPC/TLS", "TLS", "TCP", "UDP", "DNS"]


def doc(text: str, default: Any = None, **kwargs: Any) -> Any:
    """Declare a field with its documentation and its default value."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": text}, **kwargs)
    return field(default=default, metadata={"doc": text}, **kwargs)


DEFAULT_ALLOWED_REGISTRIES = [
    "docker.io/atlanhq",
    "registry-1.docker.io/atlanhq",
    "public.ecr.aws/atlanhq",
    "quay.io/argoproj",
]
DEFAULT_EDR_SERVICES = [
    "falcon-sensor",
    "mdatp",
    "sentinelone",
    "ds_agent",
    "cbagentd",
    "wazuh-agent",
    "clamav-daemon",
]
DEFAULT_PLATFORM_SERVICES = [
    "sshd",
    "chronyd",
    "ntpd",
    "systemd-resolve",
    "systemd-timesyn",
    "systemd-network",
    "dhclient",
    "auditd",
    "dockerd",
    "containerd",
    "docker-proxy",
    "podman",
    "conmon",
    "rootlessport",
]
DEFAULT_K3S_INTERNAL_PORTS = [6443, 10443, 10080, 9000, 32075, 9001, 30614, 31037, 32547]


@dataclass(frozen=True)
class RunSection:
    """How a run is set up when neither the command line nor the ini file says."""

    targets: list[str] = doc("Target URIs to check (see the target forms).", [])
    timeout_seconds: float = doc("Timeout of every network or remote call, in seconds.", 10.0)
    controls: list[str] = doc("Control ID patterns to run (fnmatch, e.g. SA-NET-*).", [])
    min_severity: str | None = doc("Run only controls of at least this severity.", None)


@dataclass(frozen=True)
class AgentSection:
    """Which workloads, containers and accounts are the agent's."""

    namespace: str = doc("Kubernetes namespace of the agent.", "atlan-agent")
    selector: dict[str, str] = doc(
        "Label selector of the agent's pods (empty: every workload in the namespace).", {}
    )
    containers: list[str] = doc("Names of the agent's containers on a container-engine host.", [])
    container_labels: dict[str, str] = doc(
        "Labels that mark the agent's containers on a container-engine host.", {}
    )
    user: str = doc("Operating-system user that owns the agent's files on a host.", "atlan")
    platform_services: list[str] = doc(
        "Processes and containers besides the agent's that may run on an agent host "
        "(listening processes and running containers outside it and the agent fail SA-SEG-001).",
        DEFAULT_PLATFORM_SERVICES,
    )
    service_accounts: list[str] = doc(
        "Kubernetes service accounts of the agent (empty: those its pods use).", []
    )
    api_access: list[str] = doc(
        "Components (pod name prefixes) that call the Kubernetes API and may mount a token.", []
    )


@dataclass(frozen=True)
class VersionsSection:
    """Minimum platform versions."""

    kubernetes_min: str = doc("Minimum Kubernetes version of control plane and kubelets.", "1.24")
    docker_min: str = doc("Minimum Docker Engine version.", "20.10")
    podman_min: str = doc("Minimum Podman version.", "4.0")


@dataclass(frozen=True)
class EngineSection:
    """How to reach the container engine (Docker or Podman) on a host target."""

    cli: str | None = doc(
        "Engine CLI on the host, as a path or a name (empty: docker, else podman, from PATH).", None
    )
    socket: str | None = doc(
        "Engine endpoint the CLI talks to: unix:///PATH, a socket path or tcp://HOST:PORT "
        "(empty: the CLI's own default, honouring DOCKER_HOST).",
        None,
    )
    socket_groups: list[str] = doc("Groups that may own the engine's unix socket.", ["root", "docker"])
    socket_mount_exceptions: list[str] = doc(
        "Agent containers allowed to mount the engine socket (e.g. the SDR Orchestrator); "
        "reported as a warning instead of a failure.",
        [],
    )


@dataclass(frozen=True)
class TlsSection:
    """What every TLS connection must offer."""

    min_version: TlsVersionName = doc("Lowest TLS version a server may accept.", "TLSv1.2")
    cert_min_days_left: int = doc("Fail when a certificate expires in fewer days.", 14)
    cert_warn_days_left: int = doc("Warn when a certificate expires in fewer days.", 30)
    ca_bundle: str | None = doc("Custom CA bundle (PEM) to verify endpoints with.", None)
    ca_min_days_left: int = doc("Fail when a CA in the custom bundle expires in fewer days.", 30)


@dataclass(frozen=True)
class OutboundRule:
    """One allowed outbound destination, as the baseline's firewall_rules block writes it."""

    destination: str = doc("Host name, wildcard domain (*.example.com) or CIDR.", "")
    port: int = doc("Destination port.", 443)
    protocol: FirewallProtocol = doc("Protocol spoken to the destination.", "HTTPS")


@dataclass(frozen=True)
class InboundRule:
    """One inbound rule; the baseline writes ``all_traffic: DENY``."""

    all_traffic: Literal["DENY"] | None = doc("DENY: no inbound connection is accepted.", None)
    source: str | None = doc("An admin CIDR allowed in (an exception to deny-all).", None)
    port: int | None = doc("The port the admin source may reach.", None)


def _default_outbound() -> list[OutboundRule]:
    return [
        OutboundRule(destination="*.atlan.com", port=443, protocol="HTTPS"),
        OutboundRule(destination="*.atlan.com", port=443, protocol="gRPC/TLS"),
    ]


@dataclass(frozen=True)
class FirewallRules:
    """The baseline's firewall requirements, accepted exactly as the baseline writes them."""

    outbound_allowed: list[OutboundRule] = field(
        default_factory=_default_outbound,
        metadata={"doc": "Allowed outbound destinations (default: *.atlan.com:443, HTTPS and gRPC/TLS)."},
    )
    inbound_blocked: list[InboundRule] = field(
        default_factory=lambda: [InboundRule(all_traffic="DENY")],
        metadata={"doc": "Inbound rules (default: all_traffic: DENY)."},
    )


@dataclass(frozen=True)
class NetworkSection:
    """Declared network facts the segmentation and probe controls use."""

    atlan_endpoints: list[str] = doc(
        "Atlan endpoints as HOST:PORT, e.g. acme.atlan.com:443 and acme-temporal.atlan.com:443.", []
    )
    grpc_endpoints: list[str] = doc("Endpoints (HOST:PORT) that speak gRPC/TLS and must offer h2.", [])
    dependencies: list[str] = doc(
        "Other TLS dependencies (registry, object store, secret store, proxy) as HOST:PORT.", []
    )
    canaries: list[str] = doc(
        "Destinations (HOST:PORT) outside the allow-list that must be blocked (active probes).", []
    )
    inbound_ports: list[int] = doc(
        "Ports the inbound probe tries on the agent's addresses.", [22, 80, 443, 8000, 3500, 50001]
    )
    inbound_addresses: list[str] = doc("Agent host addresses the inbound probe tries.", [])
    management_ports: list[int] = doc(
        "TCP ports that may listen on non-loopback addresses (e.g. ssh).", [22]
    )
    management_udp_ports: list[int] = doc(
        "UDP ports that may listen on non-loopback addresses (a management_ports number is TCP only).", []
    )
    production_cidrs: list[str] = doc("Production networks the agent must not sit in.", [])
    admin_cidrs: list[str] = doc("Admin networks allowed in as exceptions to deny-all.", [])
    proxy: str | None = doc("HTTP(S) proxy the agent uses, as URL.", None)
    k3s_internal_ports: list[int] = doc(
        "Internal ports of a K3s agent VM that must not be reachable from outside.",
        DEFAULT_K3S_INTERNAL_PORTS,
    )


@dataclass(frozen=True)
class RegistriesSection:
    """Where agent images may come from."""

    allowed: list[str] = doc("Allowed registry prefixes for agent images.", DEFAULT_ALLOWED_REGISTRIES)
    require_digest: bool = doc("Require images pinned by @sha256 digest.", True)


@dataclass(frozen=True)
class CosignSection:
    """Image-signature identity."""

    oidc_issuer: str = doc("OIDC issuer of the signing identity.", "https://token.actions.githubusercontent.com")
    identity_regexp: str = doc(
        "Regular expression the signing identity must match.",
        r"^https://github\.com/atlanhq/.+/\.github/workflows/.+$",
    )


@dataclass(frozen=True)
class CredentialsSection:
    """Credential rotation."""

    rotation_max_days: int = doc("Rotate credentials at least this often (days).", 90)
    rotation_hard_max_days: int = doc("Any credential older than this fails outright (days).", 180)
    atlan_token_max_lifespan_days: int = doc("Longest lifespan allowed for an Atlan API token.", 180)
    files: list[str] = doc("Credential files on agent hosts (must not be world-readable).", [])


@dataclass(frozen=True)
class EdrSection:
    """Endpoint protection."""

    services: list[str] = doc("Host services that count as EDR / anti-malware.", DEFAULT_EDR_SERVICES)
    daemonsets: list[str] = doc(
        "Kubernetes DaemonSet names (NAMESPACE/NAME or NAME) of EDR/runtime security.", []
    )
    definitions_max_age_hours: int = doc("Signature definitions older than this fail.", 72)
    signature_paths: list[str] = doc(
        "Signature files whose age is checked.",
        ["/var/lib/clamav/daily.cvd", "/var/lib/clamav/daily.cld"],
    )


@dataclass(frozen=True)
class LoggingSection:
    """Logging and audit."""

    retention_days: int | None = doc("Declared central log retention (days).", None)
    retention_min_days: int = doc("Minimum log retention (days).", 90)
    collector_daemonsets: list[str] = doc(
        "Log-collector DaemonSet names; empty: recognised by well-known names.", []
    )
    k8s_audit_maxage: int = doc("Minimum --audit-log-maxage of the API server.", 30)
    k8s_audit_maxbackup: int = doc("Minimum --audit-log-maxbackup of the API server.", 10)
    k8s_audit_maxsize: int = doc("Minimum --audit-log-maxsize of the API server.", 100)


@dataclass(frozen=True)
class VulnerabilitySection:
    """Scanning and patching."""

    scan_max_age_days: int = doc("Newest scan must be at most this old (days).", 7)
    patch_sla_critical_days: int = doc("Fixable critical findings must be patched within (days).", 7)
    patch_sla_high_days: int = doc("Fixable high findings must be patched within (days).", 30)
    reboot_pending_max_days: int = doc("A pending reboot may wait at most (days).", 7)
    last_host_scan: dt.date | None = doc("Date of the last host vulnerability scan.", None)
    last_image_scan: dt.date | None = doc("Date of the last image vulnerability scan.", None)
    agent_release_lag_days: int = doc("A newer agent release may stay undeployed at most (days).", 14)


@dataclass(frozen=True)
class NetworkReview:
    """Record of the network architecture review."""

    date: dt.date | None = doc("When the review was done.", None)
    reviewer: str | None = doc("Who did it.", None)
    artifact_url: str | None = doc("Link to the diagram or ticket.", None)


@dataclass(frozen=True)
class CredentialRecord:
    """One agent credential and who owns it."""

    name: str = doc("What the credential is (e.g. Atlan OAuth client).", "")
    owner: str | None = doc("Who owns and rotates it.", None)


@dataclass(frozen=True)
class CredentialReview:
    """Record of the credential-management validation."""

    date: dt.date | None = doc("When the validation was done.", None)
    reviewer: str | None = doc("Who did it.", None)
    secret_store: SecretStoreType | None = doc("The secret store that holds agent credentials.", None)
    rotation_max_days: int | None = doc("The rotation period the review set (days).", None)
    owners: list[str] = doc("Owners of the credential design.", [])
    credentials: list[CredentialRecord] = doc("Every agent credential with its owner.", [])


@dataclass(frozen=True)
class AssessmentSection:
    """The pre-deployment security assessment."""

    max_age_days: int = doc("An assessment record older than this fails (days).", 365)
    rotation_ceiling_days: int = doc("Highest rotation period a review may set (days).", 180)
    network_review: NetworkReview = field(
        default_factory=NetworkReview, metadata={"doc": "The network architecture review."}
    )
    credential_review: CredentialReview = field(
        default_factory=CredentialReview, metadata={"doc": "The credential management validation."}
    )


@dataclass(frozen=True)
class IncidentResponseSection:
    """Incident-response coordination."""

    runbook_url: str | None = doc("Agent-specific incident-response runbook.", None)
    internal_contact: str | None = doc("Internal security contact.", None)
    atlan_contact: str | None = doc("Atlan's security contact.", None)
    last_exercise_date: dt.date | None = doc("Date of the last incident-response exercise.", None)
    log_preservation: str | None = doc("Where incident logs are preserved.", None)
    max_exercise_age_days: int = doc("An exercise older than this fails (days).", 365)
    expected_atlan_contact: str = doc("The contact the runbook must name.", "security@atlan.com")


@dataclass(frozen=True)
class Attestation:
    """A signed-off record of a procedural control that no probe can prove."""

    by: str | None = doc("Who attests it (name or e-mail).", None)
    date: dt.date | None = doc("When it was done (YYYY-MM-DD).", None)
    evidence_url: str | None = doc("Link to the evidence: report, ticket, minutes.", None)
    max_age_days: int | None = doc(
        "Stale after this many days (default: the attestation's own, see attestations).", None
    )


@dataclass(frozen=True)
class AttestationsSection:
    """Attestations of the procedural controls; each is stale after its maximum age."""

    network_architecture_review: Attestation = field(
        default_factory=Attestation,
        metadata={"doc": "Network architecture review (SA-ASSESS-001); default maximum age 365 days."},
    )
    credential_management_validation: Attestation = field(
        default_factory=Attestation,
        metadata={"doc": "Credential management validation (SA-ASSESS-002); default maximum age 365 days."},
    )
    access_review: Attestation = field(
        default_factory=Attestation,
        metadata={"doc": "Access review of the agent's data-source credentials (SA-IAM-003); "
                  "default maximum age 90 days."},
    )
    incident_response_exercise: Attestation = field(
        default_factory=Attestation,
        metadata={"doc": "Incident-response exercise (SA-OPS-003); default maximum age 365 days."},
    )


@dataclass(frozen=True)
class WaiversSection:
    """Limits on the waiver file (``--secagent-waivers``)."""

    max_days: int = doc("Latest expiry a waiver may have, in days from today.", 365)


@dataclass(frozen=True)
class Policy:
    """The effective policy: the baselines' defaults overlaid by the policy file."""

    version: Literal[1] = doc("Schema version of the policy file.", 1)
    run: RunSection = field(default_factory=RunSection, metadata={"doc": RunSection.__doc__})
    agent: AgentSection = field(default_factory=AgentSection, metadata={"doc": AgentSection.__doc__})
    versions: VersionsSection = field(
        default_factory=VersionsSection, metadata={"doc": VersionsSection.__doc__}
    )
    engine: EngineSection = field(default_factory=EngineSection, metadata={"doc": EngineSection.__doc__})
    tls: TlsSection = field(default_factory=TlsSection, metadata={"doc": TlsSection.__doc__})
    firewall_rules: FirewallRules = field(
        default_factory=FirewallRules, metadata={"doc": FirewallRules.__doc__}
    )
    network: NetworkSection = field(
        default_factory=NetworkSection, metadata={"doc": NetworkSection.__doc__}
    )
    registries: RegistriesSection = field(
        default_factory=RegistriesSection, metadata={"doc": RegistriesSection.__doc__}
    )
    cosign: CosignSection = field(default_factory=CosignSection, metadata={"doc": CosignSection.__doc__})
    credentials: CredentialsSection = field(
        default_factory=CredentialsSection, metadata={"doc": CredentialsSection.__doc__}
    )
    edr: EdrSection = field(default_factory=EdrSection, metadata={"doc": EdrSection.__doc__})
    logging: LoggingSection = field(default_factory=LoggingSection, metadata={"doc": LoggingSection.__doc__})
    vulnerability: VulnerabilitySection = field(
        default_factory=VulnerabilitySection, metadata={"doc": VulnerabilitySection.__doc__}
    )
    assessment: AssessmentSection = field(
        default_factory=AssessmentSection, metadata={"doc": AssessmentSection.__doc__}
    )
    incident_response: IncidentResponseSection = field(
        default_factory=IncidentResponseSection, metadata={"doc": IncidentResponseSection.__doc__}
    )
    attestations: AttestationsSection = field(
        default_factory=AttestationsSection, metadata={"doc": AttestationsSection.__doc__}
    )
    waivers: WaiversSection = field(default_factory=WaiversSection, metadata={"doc": WaiversSection.__doc__})


def _values_hidden(self: object) -> str:
    """A policy section's repr: its type and how many settings it has, never their values.

    The policy may hold credentials (a proxy URL with a password, a webhook); a repr reaches
    tracebacks, ``-l`` locals and ``-vvv`` diffs, so it shows no value at all.
    """
    return f"{type(self).__name__}(values not shown: {len(fields(type(self)))} settings)"  # type: ignore[arg-type]


_SECTIONS = [value for value in list(globals().values()) if isinstance(value, type) and is_dataclass(value)]
for _section in _SECTIONS:
    setattr(_section, "__repr__", _values_hidden)  # noqa: B010 - set on the class after @dataclass made its own
