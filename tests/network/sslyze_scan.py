"""The reference verdicts: which protocol versions sslyze finds each test server accepting."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sslyze.plugins.scan_commands import ScanCommand
from sslyze.scanner.models import ServerScanRequest, ServerScanStatusEnum
from sslyze.scanner.scanner import Scanner
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

_COMMANDS = {
    ScanCommand.SSL_3_0_CIPHER_SUITES: "SSLv3",
    ScanCommand.TLS_1_0_CIPHER_SUITES: "TLSv1",
    ScanCommand.TLS_1_1_CIPHER_SUITES: "TLSv1.1",
    ScanCommand.TLS_1_2_CIPHER_SUITES: "TLSv1.2",
    ScanCommand.TLS_1_3_CIPHER_SUITES: "TLSv1.3",
}


def accepted_versions(ports: Iterable[int], *, timeout: int = 5) -> dict[int, frozenset[str]]:
    """Scan 127.0.0.1 on each port; return the versions with at least one accepted cipher suite."""
    requests = [
        ServerScanRequest(
            server_location=ServerNetworkLocation("localhost", port, ip_address="127.0.0.1"),
            network_configuration=ServerNetworkConfiguration(
                "localhost", network_timeout=timeout, network_max_retries=1
            ),
            scan_commands=set(_COMMANDS),
        )
        for port in ports
    ]
    scanner = Scanner(per_server_concurrent_connections_limit=4)
    scanner.queue_scans(requests)
    verdicts: dict[int, frozenset[str]] = {}
    for result in scanner.get_results():
        port = result.server_location.port
        if result.scan_status is not ServerScanStatusEnum.COMPLETED:
            raise RuntimeError(f"sslyze could not scan port {port}: {result.connectivity_error_trace}")
        accepted = set()
        for command, version in _COMMANDS.items():
            attempt: Any = getattr(result.scan_result, command.value)
            if attempt.error_reason is not None:
                raise RuntimeError(f"sslyze {command.value} failed on port {port}: {attempt.error_trace}")
            if attempt.result.accepted_cipher_suites:
                accepted.add(version)
        verdicts[port] = frozenset(accepted)
    return verdicts
