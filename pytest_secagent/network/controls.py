"""The network controls' judgement: probe results against the policy, into the evidence.

Each ``check_*`` function gathers its evidence, records every expectation in an
:class:`~pytest_secagent.evidence.Evidence` and ends with :func:`finish`: a definite
finding fails the control, an unknown that could hide one (a version the local library
could not offer, a timeout) makes it an error, never a pass.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Sequence
from pathlib import Path

from pytest_secagent.evidence import Evidence
from pytest_secagent.network.reachability import (
    ConnectResult,
    ConnectStatus,
    Destination,
    Vantage,
    allow_list_match,
    host_matches,
)
from pytest_secagent.network.tls import (
    Acceptance,
    Endpoint,
    TlsReport,
    cipher_problems,
    probe_addresses,
    version_rank,
)
from pytest_secagent.network.x509 import CertificateError, days_left, pem_blocks, read_certificate
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "ATLAN_DOMAIN",
    "ProbeCache",
    "check_ca_bundle",
    "check_canaries",
    "check_egress",
    "check_inbound",
    "check_tls",
    "finish",
    "is_atlan_endpoint",
    "judge_tls",
    "needs_h2",
]

ATLAN_DOMAIN = "*.atlan.com"
"""Hosts under this wildcard are Atlan endpoints even when the policy does not list them."""

_GRPC_SUFFIX = "-temporal.atlan.com"


def _declared(specs: Sequence[str], host: str, port: int) -> bool:
    wanted = Destination(host.rstrip(".").lower(), port)
    for spec in specs:
        try:
            if Destination.parse(spec) == wanted:
                return True
        except ValueError:
            continue
    return False


def is_atlan_endpoint(host: str, port: int, policy: Policy) -> bool:
    """Whether ``host:port`` is an Atlan endpoint (SA-NET-007) rather than a dependency (SA-NET-008).

    Atlan endpoints are the hosts under ``*.atlan.com`` and those in ``network.atlan_endpoints``.
    """
    return host_matches(ATLAN_DOMAIN, host) or _declared(policy.network.atlan_endpoints, host, port)


def needs_h2(host: str, port: int, policy: Policy) -> bool:
    """Whether the endpoint speaks gRPC/TLS and must negotiate ``h2``.

    gRPC endpoints are those in ``network.grpc_endpoints`` and ``*-temporal.atlan.com`` hosts.
    """
    return host.rstrip(".").lower().endswith(_GRPC_SUFFIX) or _declared(
        policy.network.grpc_endpoints, host, port
    )


def finish(evidence: Evidence, unknowns: Sequence[str]) -> None:
    """Conclude: fail on any finding, else error on any unknown, else pass."""
    __tracebackhide__ = True
    if evidence.failures or not unknowns:
        evidence.conclude()
        return
    raise EvidenceUnavailable("; ".join(unknowns))


def _handshake_text(report: TlsReport) -> str:
    if report.handshake is None:
        return f"no handshake: {report.handshake_error or 'failed'}"
    alpn = report.handshake.alpn or "none"
    return f"{report.handshake.version}, {report.handshake.cipher}, ALPN {alpn}"


def _judge_versions(report: TlsReport, evidence: Evidence, unknowns: list[str]) -> None:
    ep = report.endpoint
    floor = version_rank(report.min_version)
    for result in report.versions:
        name = f"{ep} {result.version}"
        text = f"{result.acceptance.value}: {result.detail}"
        if version_rank(result.version) >= floor or result.acceptance is Acceptance.NOT_PROBED:
            evidence.observe(name, text)
            continue
        if result.acceptance is Acceptance.INCONCLUSIVE:
            evidence.observe(name, text)
            unknowns.append(f"{ep}: whether {result.version} is accepted is unknown ({result.detail})")
            continue
        evidence.expect(
            name,
            expected=f"rejected (older than {report.min_version})",
            actual=text,
            ok=result.acceptance is Acceptance.REJECTED,
        )


def _judge_certificate(report: TlsReport, policy: Policy, evidence: Evidence, unknowns: list[str]) -> None:
    ep = report.endpoint
    trust = "the system store" + (f" and {policy.tls.ca_bundle}" if policy.tls.ca_bundle else "")
    if report.handshake is not None or report.chain_error is not None:
        evidence.expect(
            f"{ep} certificate chain",
            expected=f"verifies against {trust}",
            actual="verified" if report.chain_error is None else report.chain_error,
            ok=report.chain_error is None,
        )
    facts = report.certificate
    if facts is None and report.handshake_cut_off:
        why = report.certificate_error or "none"
        evidence.observe(f"{ep} certificate", f"unknown: {why}; the handshake was cut off by the deadline")
        unknowns.append(f"{ep}: no certificate was read before the deadline")
        return
    if facts is None:
        evidence.expect(
            f"{ep} certificate",
            expected="a readable server certificate",
            actual=report.certificate_error or "none",
            ok=False,
        )
        return
    evidence.expect(
        f"{ep} certificate names",
        expected=f"a subject alternative name matching {ep.name}",
        actual=", ".join(facts.names) or "no subject alternative names",
        ok=bool(report.hostname_ok),
    )
    left = days_left(facts.not_after)
    actual = f"{left} days left (notAfter {facts.not_after:%Y-%m-%d %H:%M} UTC)"
    expected = f">= {policy.tls.cert_min_days_left} days left"
    if (
        evidence.expect(
            f"{ep} certificate expiry",
            expected=expected,
            actual=actual,
            ok=left >= policy.tls.cert_min_days_left,
        )
        and left < policy.tls.cert_warn_days_left
    ):
        evidence.warn(
            f"{ep} certificate renewal",
            expected=f">= {policy.tls.cert_warn_days_left} days left",
            actual=actual,
        )


def _judge_ciphers(report: TlsReport, evidence: Evidence) -> None:
    ep = report.endpoint
    if report.handshake is not None:
        problems = cipher_problems(report.handshake.cipher, report.handshake.version)
        evidence.expect(
            f"{ep} negotiated cipher",
            expected="a TLS 1.3 suite, or ECDHE/DHE with an AEAD mode",
            actual=f"{report.handshake.cipher} ({report.handshake.version})"
            + (f": {', '.join(problems)}" if problems else ""),
            ok=not problems,
        )
    tls12 = report.version("TLSv1.2")
    if tls12.acceptance is Acceptance.ACCEPTED and tls12.cipher:
        problems = cipher_problems(tls12.cipher, "TLSv1.2")
        evidence.expect(
            f"{ep} TLS 1.2 cipher (all ciphers offered)",
            expected="ECDHE/DHE with an AEAD mode; no NULL, EXPORT, RC4, DES, 3DES, MD5, anonymous or CBC",
            actual=tls12.cipher + (f": {', '.join(problems)}" if problems else ""),
            ok=not problems,
        )
    else:
        evidence.observe(f"{ep} TLS 1.2 cipher", f"not checked: TLS 1.2 {tls12.acceptance.value}")


def judge_tls(report: TlsReport, policy: Policy, evidence: Evidence, *, require_h2: bool) -> list[str]:
    """Record the TLS expectations for one probed endpoint; return the unknowns.

    Expected: a verified handshake at ``tls.min_version`` or newer, every older version
    rejected, a chain that verifies, a name that matches, enough days to expiry, a strong
    negotiated cipher (also for TLS 1.2 when every cipher is offered), and ``h2`` for gRPC.
    A handshake the deadline cut off after the server began to answer is unknown, not
    failed, and so is the certificate it did not show.
    """
    ep = report.endpoint
    unknowns: list[str] = []
    evidence.observe(f"{ep} SNI", ep.sni or "none (the name is an IP address)")
    if report.handshake is None and report.handshake_cut_off:
        # Cut off by the deadline: nothing shows the server would not complete it.
        why = (report.handshake_error or "").removeprefix(f"{ep}: ")
        evidence.observe(f"{ep} handshake", f"unknown: {why}")
        unknowns.append(f"{ep}: the verified handshake did not finish: {why}")
    else:
        evidence.expect(
            f"{ep} handshake",
            expected=f"completes at {report.min_version} or newer",
            actual=_handshake_text(report),
            ok=report.handshake is not None,
        )
    _judge_versions(report, evidence, unknowns)
    _judge_certificate(report, policy, evidence, unknowns)
    _judge_ciphers(report, evidence)
    if require_h2 and report.handshake is None and report.handshake_cut_off:
        evidence.observe(f"{ep} ALPN (gRPC/TLS)", "unknown: the handshake did not finish before the deadline")
    elif require_h2:
        alpn = report.handshake.alpn if report.handshake else None
        evidence.expect(
            f"{ep} ALPN (gRPC/TLS)",
            expected="h2",
            actual=alpn or ("no protocol selected" if report.handshake else "no handshake"),
            ok=alpn == "h2",
        )
    return unknowns


def check_tls(endpoint: Endpoint, policy: Policy, timeout: float, evidence: Evidence) -> list[str]:
    """Probe every address of one endpoint and judge each (see :func:`judge_tls`); return the unknowns.

    A name stands for every address it resolves to (A and AAAA, several records): each
    is probed and judged under its own name, so one weak address fails the control. An
    address that cannot be probed is an unknown, which makes the control an error unless
    another address already failed it. A name that does not resolve raises
    :class:`EvidenceUnavailable`. ``timeout`` is the deadline of the whole probe of the
    endpoint: resolution and every connection to every address.
    """
    probes = probe_addresses(
        endpoint, timeout=timeout, min_version=policy.tls.min_version, ca_bundle=policy.tls.ca_bundle
    )
    if endpoint.address is None and any(p.endpoint.address != endpoint.host for p in probes):
        evidence.observe(f"{endpoint} addresses", ", ".join(str(p.endpoint.address) for p in probes))
    require_h2 = needs_h2(endpoint.host, endpoint.port, policy)
    unknowns: list[str] = []
    for probe in probes:
        if probe.report is None:
            reason = probe.error or "not probed"
            evidence.observe(f"{probe.endpoint}", f"not probed: {reason}")
            unknowns.append(reason)
            continue
        unknowns += judge_tls(probe.report, policy, evidence, require_h2=require_h2)
    return unknowns


def check_ca_bundle(policy: Policy, evidence: Evidence) -> None:
    """The custom CA bundle parses, holds only CA certificates, and none expires soon."""
    path = policy.tls.ca_bundle
    if not path:
        return
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise EvidenceUnavailable(f"cannot read the CA bundle {path}: {exc.strerror or exc}") from exc
    try:
        blocks = pem_blocks(data)
    except CertificateError as exc:
        blocks = []
        evidence.expect(f"CA bundle {path}", expected="PEM certificates", actual=str(exc), ok=False)
    if not evidence.expect(
        f"CA bundle {path}",
        expected="at least one PEM certificate",
        actual=f"{len(blocks)} certificate(s)",
        ok=bool(blocks),
    ):
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
        cas = len(context.get_ca_certs())
        error = None
    except ssl.SSLError as exc:
        cas, error = 0, str(exc)
    evidence.expect(
        f"CA bundle {path} certificates",
        expected=f"all {len(blocks)} are CA certificates OpenSSL loads",
        actual=error or f"{cas} CA certificate(s) loaded",
        ok=error is None and cas >= len(blocks),
    )
    for index, der in enumerate(blocks, start=1):
        try:
            facts = read_certificate(der)
        except CertificateError as exc:
            evidence.expect(
                f"CA bundle {path} #{index}", expected="a readable certificate", actual=str(exc), ok=False
            )
            continue
        left = days_left(facts.not_after)
        evidence.expect(
            f"CA bundle {path} #{index} expiry",
            expected=f">= {policy.tls.ca_min_days_left} days left",
            actual=f"{left} days left (notAfter {facts.not_after:%Y-%m-%d})",
            ok=left >= policy.tls.ca_min_days_left,
        )


class ProbeCache:
    """Connection results shared by the items of one run, so run-wide probes happen once."""

    def __init__(self) -> None:
        self._results: dict[tuple[str, Destination], ConnectResult] = {}
        self._lock = threading.Lock()

    def connect(self, vantage: Vantage, destination: Destination, timeout: float) -> ConnectResult:
        """The result of connecting from ``vantage`` to ``destination``, probed once."""
        key = (vantage.name, destination)
        with self._lock:
            cached = self._results.get(key)
        if cached is not None:
            return cached
        result = vantage.connect(destination, timeout=timeout)
        with self._lock:
            self._results.setdefault(key, result)
        return result


def _destinations(specs: Sequence[str], what: str) -> list[Destination]:
    parsed = []
    for spec in specs:
        try:
            parsed.append(Destination.parse(spec))
        except ValueError as exc:
            raise EvidenceUnavailable(f"{what}: {exc}") from None
    return parsed


def check_egress(
    vantages: Sequence[Vantage], destination: Destination, policy: Policy, timeout: float, evidence: Evidence
) -> None:
    """SA-NET-005: the Atlan endpoint is reachable from each vantage.

    It resolves, the allow-list covers it, and it completes a verified handshake (``h2``
    for gRPC endpoints).
    """
    rules = policy.firewall_rules.outbound_allowed
    grpc = needs_h2(destination.host, destination.port, policy)
    for vantage in vantages:
        where = f"{destination} from {vantage.name}"
        addresses = vantage.resolve(destination.host)
        if not evidence.expect(
            f"{where}: resolves",
            expected="one or more addresses",
            actual=", ".join(addresses) or "does not resolve",
            ok=bool(addresses),
        ):
            continue
        rule = allow_list_match(rules, destination.host, destination.port, addresses)
        evidence.expect(
            f"{where}: allow-listed",
            expected="covered by firewall_rules.outbound_allowed",
            actual=f"{rule.destination}:{rule.port} {rule.protocol}" if rule else "no rule covers it",
            ok=rule is not None,
        )
        reach = vantage.tls(destination, timeout=timeout, ca_bundle=policy.tls.ca_bundle)
        evidence.expect(
            f"{where}: verified TLS handshake",
            expected="chain and host name verify",
            actual=f"verified, {reach.version}" if reach.verified else (reach.error or "failed"),
            ok=reach.verified,
        )
        if grpc:
            evidence.expect(
                f"{where}: ALPN (gRPC/TLS)",
                expected="h2",
                actual=reach.alpn or "no protocol selected",
                ok=reach.alpn == "h2",
            )


def check_canaries(
    vantages: Sequence[Vantage],
    destination: Destination,
    policy: Policy,
    timeout: float,
    evidence: Evidence,
    cache: ProbeCache,
) -> list[str]:
    """SA-NET-006: every canary is blocked from each vantage.

    ``destination`` (an allowed Atlan endpoint) must be reachable from the same vantage,
    which proves the vantage has egress at all.

    Returns the unknowns: canaries whose probe itself failed, and canaries whose name does
    not resolve from the vantage (no DNS answer is no proof that the firewall blocks them).
    """
    canaries = _destinations(policy.network.canaries, "network.canaries")
    rules = policy.firewall_rules.outbound_allowed
    for canary in canaries:
        if allow_list_match(rules, canary.host, canary.port) is not None:
            raise EvidenceUnavailable(
                f"canary {canary} is inside firewall_rules.outbound_allowed, so it may connect; "
                "choose canaries outside the allow-list"
            )
    unknowns: list[str] = []
    for vantage in vantages:
        control = cache.connect(vantage, destination, timeout)
        if control.status is not ConnectStatus.CONNECTED:
            raise EvidenceUnavailable(
                f"the allowed endpoint {destination} is not reachable from {vantage.name} "
                f"({control.status.value}: {control.detail}), so blocked canaries would prove nothing"
            )
        evidence.observe(f"{destination} from {vantage.name} (allowed, positive control)", control.detail)
        for canary in canaries:
            resolved = bool(vantage.resolve(canary.host))
            result = cache.connect(vantage, canary, timeout) if resolved else None
            if result is None or result.status is ConnectStatus.UNRESOLVED:
                detail = (
                    f"{canary.host} does not resolve from here, and a name that does not resolve "
                    "proves nothing about the egress filter (an address is reached without DNS); "
                    "declare a canary that resolves, or an IP address"
                )
                unknowns.append(f"{canary} from {vantage.name}: {detail}")
                evidence.observe(f"{canary} from {vantage.name}", f"unknown: {detail}")
                continue
            if result.status is ConnectStatus.ERROR:
                unknowns.append(f"{canary} from {vantage.name}: {result.detail}")
                evidence.observe(f"{canary} from {vantage.name}", f"unknown: {result.detail}")
                continue
            evidence.expect(
                f"{canary} from {vantage.name} (canary)",
                expected="blocked (timeout, refused, unreachable)",
                actual=f"{result.status.value}: {result.detail}",
                ok=result.status.blocked,
            )
    return unknowns


def check_inbound(
    vantage: Vantage, policy: Policy, timeout: float, evidence: Evidence, cache: ProbeCache
) -> None:
    """SA-NET-004: no inbound address accepts a connection on any inbound port.

    An open port with an admin exception in ``firewall_rules.inbound_blocked`` (a rule with
    that ``port`` and a ``source``) is a warning to confirm the source restriction. A probe
    that could not be made (no route, no address, an error) raises ``EvidenceUnavailable``
    unless another probe already failed the control.
    """
    addresses = policy.network.inbound_addresses
    ports = policy.network.inbound_ports
    exceptions = {r.port: r.source for r in policy.firewall_rules.inbound_blocked if r.port and r.source}
    reached = 0
    unknowns: list[str] = []
    for address in addresses:
        for port in ports:
            destination = Destination.parse(f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
            result = cache.connect(vantage, destination, timeout)
            name = f"{destination} from {vantage.name}"
            actual = f"{result.status.value}: {result.detail}"
            if result.status in (ConnectStatus.NO_ROUTE, ConnectStatus.UNRESOLVED, ConnectStatus.ERROR):
                evidence.observe(name, f"unknown: {actual}")
                unknowns.append(f"{name}: {actual}")
                continue
            reached += 1
            if result.status is ConnectStatus.CONNECTED and port in exceptions:
                evidence.warn(name, expected=f"reachable only from {exceptions[port]}", actual=actual)
                continue
            evidence.expect(
                name,
                expected="no connection accepted",
                actual=actual,
                ok=result.status is not ConnectStatus.CONNECTED,
            )
    if not reached:
        raise EvidenceUnavailable(
            f"no inbound address could be probed from {vantage.name}: none is routable or resolvable"
        )
    if unknowns and not evidence.failures:
        raise EvidenceUnavailable(
            f"{len(unknowns)} inbound probe(s) could not be made, so nothing shows those ports closed: "
            + "; ".join(unknowns)
        )
