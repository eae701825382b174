"""A version refused only for want of a shared cipher is unknown, not refused.

``handshake_failure`` before any ServerHello also means "no cipher of your offer suits me": a
server that takes TLS 1.0 only with a cipher this machine's library cannot offer (SEED-SHA
from OpenSSL's legacy provider) must not be recorded as refusing TLS 1.0.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_secagent.network.tls import Acceptance, Endpoint, probe_version
from tests.network.certs import CertAuthority
from tests.network.servers import openssl_server
from tests.support import require_tool

# TLS 1.2 with a modern cipher; TLS 1.0 only with SEED-SHA, which the probe cannot offer.
LEGACY_ONLY_CIPHER = ("-cipher", "ECDHE-RSA-AES128-GCM-SHA256:SEED-SHA:@SECLEVEL=0", "-no_tls1_3",
                      "-provider", "legacy", "-provider", "default")


@pytest.mark.needs("openssl")
def test_a_cipher_mismatch_is_not_a_refusal(test_ca: CertAuthority, tmp_path: Path) -> None:
    require_tool("openssl", "openssl")
    issued = test_ca.issue("cipher-refusal")
    try:
        server = openssl_server(issued, tmp_path, *LEGACY_ONLY_CIPHER)
        port = server.__enter__()
    except RuntimeError as exc:
        pytest.fail(f"this openssl cannot serve SEED-SHA from its legacy provider: {exc}")
    try:
        result = probe_version(Endpoint("127.0.0.1", port), "TLSv1", timeout=5)
    finally:
        server.__exit__(None, None, None)
    assert result.acceptance is not Acceptance.REJECTED, result
    if result.acceptance is Acceptance.INCONCLUSIVE:
        assert "handshake_failure" in result.detail
