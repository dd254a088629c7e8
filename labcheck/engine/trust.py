"""TLS trust as skopeo has it: system store or SSL_CERT_FILE, --cert-dir, /etc/containers/certs.d/."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

CERTS_D_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")


def _host_cert_dirs(registry: str, cert_dir: str | None) -> list[Path]:
    """--cert-dir replaces the per-host certs.d lookup, as in containers/image."""
    if cert_dir:
        return [Path(cert_dir)]
    return [Path(base) / registry for base in CERTS_D_DIRS]


def ssl_context_for(registry: str, *, cert_dir: str | None = None) -> ssl.SSLContext:
    """A verifying client context: system CAs (SSL_CERT_FILE/SSL_CERT_DIR honoured by OpenSSL),
    plus *.crt CAs and *.cert/*.key client pairs from the registry's certificate directory."""
    context = ssl.create_default_context()
    cafile = os.environ.get("SSL_CERT_FILE")
    if cafile and os.path.isfile(cafile):
        context.load_verify_locations(cafile=cafile)
    for directory in _host_cert_dirs(registry, cert_dir):
        if not directory.is_dir():
            continue
        for entry in sorted(directory.iterdir()):
            if entry.suffix == ".crt":
                context.load_verify_locations(cafile=str(entry))
            elif entry.suffix == ".cert":
                key = entry.with_suffix(".key")
                if key.exists():
                    context.load_cert_chain(str(entry), str(key))
    return context
