"""The lab CA and the registries' server certificate, generated at `lab up`."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SYSTEM_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_lab_pki(tls_dir: Path) -> None:
    """Create ca.crt, server.crt/server.key (for localhost and 127.0.0.1) and bundle.crt once."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca_cert_path, server_cert_path = tls_dir / "ca.crt", tls_dir / "server.crt"
    if all((tls_dir / name).exists() for name in ("ca.crt", "server.crt", "bundle.crt", "cert-dir/ca.crt")):
        return
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=825)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labcheck lab CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    _write_private(tls_dir / "ca.key", _key_pem(ca_key))
    _write_private(tls_dir / "server.key", _key_pem(server_key))
    server_cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    ca_cert_path.write_bytes(ca_pem)
    (tls_dir / "bundle.crt").write_bytes(system_ca_pem() + b"\n" + ca_pem)
    # A --cert-dir style directory holding just the lab CA, for clients that take one.
    (tls_dir / "cert-dir").mkdir(exist_ok=True)
    (tls_dir / "cert-dir" / "ca.crt").write_bytes(ca_pem)


def system_ca_pem() -> bytes:
    """The system's CA bundle (what SSL_CERT_FILE would have replaced)."""
    for candidate in SYSTEM_CA_BUNDLES:
        if os.path.exists(candidate):
            return Path(candidate).read_bytes()
    return b""
