"""TLS trust as skopeo has it: system store or SSL_CERT_FILE, --cert-dir, /etc/containers/certs.d/."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from labcheck.errors import UsageError

CERTS_D_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")


def host_cert_dirs(registry: str, cert_dir: str | None) -> list[Path]:
    """--cert-dir replaces the per-host certs.d lookup, as in containers/image."""
    if cert_dir:
        return [Path(cert_dir)]
    bases = [Path(base) for base in CERTS_D_DIRS]
    if os.geteuid() != 0:  # rootless users get a certs.d of their own first
        config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        bases.insert(0, Path(config_home) / "containers" / "certs.d")
    return [base / registry for base in bases]


def ssl_context_for(registry: str, *, cert_dir: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system CAs (OpenSSL honours SSL_CERT_FILE and SSL_CERT_DIR;
    REQUESTS_CA_BUNDLE plays no part), plus *.crt CAs and *.cert/*.key client pairs from the
    registry's certificate directory."""
    context = ssl.create_default_context()
    cafile = os.environ.get("SSL_CERT_FILE")
    if cafile and os.path.isfile(cafile):
        context.load_verify_locations(cafile=cafile)
    for directory in host_cert_dirs(registry, cert_dir):
        if directory.is_dir():
            _load_cert_dir(context, directory)
    return context


def _load_cert_dir(context: ssl.SSLContext, directory: Path) -> None:
    for entry in sorted(directory.iterdir()):
        try:
            if entry.suffix == ".crt":
                context.load_verify_locations(cafile=str(entry))
            elif entry.suffix == ".cert":
                key = entry.with_suffix(".key")
                if not key.exists():
                    raise UsageError(f"client certificate {entry} has no key {key.name} beside it")
                context.load_cert_chain(str(entry), str(key))
            elif entry.suffix == ".key" and not entry.with_suffix(".cert").exists():
                raise UsageError(f"client key {entry} has no certificate {entry.with_suffix('.cert').name} beside it")
        except ssl.SSLError as exc:
            raise UsageError(f"cannot load {entry}: {exc.reason or exc.__class__.__name__}") from None
