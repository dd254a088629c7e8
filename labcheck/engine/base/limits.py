"""How much of a registry's answer is read into memory, at most, as containers/image limits it
(internal/iolimits, after CVE-2020-1702): a hostile registry cannot exhaust memory with an endless body."""

from __future__ import annotations

MiB = 1 << 20

MAX_MANIFEST = 4 * MiB  # distribution refuses larger manifests too
MAX_CONFIG = 4 * MiB
MAX_TOKEN = 1 * MiB
MAX_ERROR_BODY = 1 * MiB
# Any other answer read whole (tag lists, the /v2/ ping): generous, but bounded.
MAX_OTHER_BODY = 16 * MiB


def size_text(limit: int) -> str:
    """4194304 → "4 MiB"."""
    return f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit} bytes"
