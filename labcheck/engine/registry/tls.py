"""TLS trust as skopeo has it: system store or SSL_CERT_FILE, --cert-dir, /etc/containers/certs.d/."""

from __future__ import annotations

import os
import ssl
import threading
from pathlib import Path

from labcheck.errors import UsageError

CERTS_D_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")

# Building a context reads the whole system CA store (~0.1 s of CPU): contexts are shared, keyed by
# everything they were built from, files' mtimes and sizes included, so a changed CA is picked up.
_CONTEXTS: dict[tuple, ssl.SSLContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def host_cert_dirs(registry: str, cert_dir: str | None) -> list[Path]:
    """--cert-dir replaces the per-host certs.d lookup, as in containers/image."""
    if cert_dir:
        return [Path(cert_dir)]
    bases = [Path(base) for base in CERTS_D_DIRS]
    if os.geteuid() != 0:  # rootless users get a certs.d of their own first
        config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        bases.insert(0, Path(config_home) / "containers" / "certs.d")
    return [base / registry for base in bases]


def ssl_context_for(registry: str, *, cert_dir: str | None = None, ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system CAs (OpenSSL honours SSL_CERT_FILE and SSL_CERT_DIR;
    REQUESTS_CA_BUNDLE plays no part), plus ca_file (default $SSL_CERT_FILE), plus *.crt CAs and
    *.cert/*.key client pairs from the registry's certificate directory.

    The context is shared by every caller that would build the same one (contexts are thread-safe)."""
    cafile = ca_file or os.environ.get("SSL_CERT_FILE")
    directories = [d for d in host_cert_dirs(registry, cert_dir) if d.is_dir()]
    key = (cafile, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"),
           _stamp(Path(cafile)) if cafile else None,
           tuple((str(d), tuple((e.name, _stamp(e)) for e in sorted(d.iterdir()))) for d in directories))
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(key)
    if context is None:
        context = ssl.create_default_context()
        # OpenSSL's default paths already loaded $SSL_CERT_FILE; loading it again doubles the cost.
        if cafile and cafile != os.environ.get("SSL_CERT_FILE") and os.path.isfile(cafile):
            context.load_verify_locations(cafile=cafile)
        for directory in directories:
            _load_cert_dir(context, directory)
        with _CONTEXTS_LOCK:
            context = _CONTEXTS.setdefault(key, context)
    return context


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


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
