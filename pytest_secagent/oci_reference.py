"""Content digests of image references, read the way the OCI distribution rules define them.

A digest is ``algorithm:encoded``. For ``sha256`` the encoded part is exactly 64 lowercase
hexadecimal digits; anything else (``sha256:abc``, upper-case digits, a truncated copy)
names no content, so a runtime cannot pull by it and it pins nothing.
"""

from __future__ import annotations

import re

__all__ = ["SHA256_DIGEST", "digest_problem", "is_sha256_digest"]

SHA256_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
"""A complete sha256 content digest (match it with ``fullmatch``)."""


def is_sha256_digest(digest: str | None) -> bool:
    """Tell whether ``digest`` (the text after ``@``) is a complete sha256 content digest."""
    return digest is not None and SHA256_DIGEST.fullmatch(digest) is not None


def digest_problem(digest: str | None) -> str | None:
    """Say why ``digest`` is not a sha256 pin, or return ``None`` when it is one."""
    if not digest:
        return "no @sha256 digest"
    if is_sha256_digest(digest):
        return None
    algorithm, colon, encoded = digest.partition(":")
    if not colon or algorithm != "sha256":
        return f"digest {digest!r} is not a sha256 digest"
    return (
        f"digest {digest!r} is not sha256 followed by 64 lower-case hex digits "
        f"(it has {len(encoded)} characters)"
    )
