"""The lab CA and the certificates it signs, generated at `lab up`: one for the registries on
127.0.0.1, one for the page's registry names inside the sandbox."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SYSTEM_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
)
VALIDITY = datetime.timedelta(days=825)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - datetime.timedelta(days=1), now + VALIDITY


def _subject_alt_names(names: Iterable[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labcheck lab CA")])
    start, end = _validity()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server_cert(names: list[str], ca_key: ec.EllipticCurvePrivateKey,
                      ca_cert: x509.Certificate) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def ensure_lab_pki(tls_dir: Path) -> None:
    """Create ca.crt, server.crt/server.key (for localhost and 127.0.0.1) and bundle.crt once."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    if all((tls_dir / name).exists() for name in ("ca.crt", "server.crt", "bundle.crt", "cert-dir/ca.crt")):
        return
    ca_key, ca_cert = _make_ca()
    server_key, server_cert = _make_server_cert(list(LOOPBACK_NAMES), ca_key, ca_cert)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    _write_private(tls_dir / "ca.key", _key_pem(ca_key))
    _write_private(tls_dir / "server.key", _key_pem(server_key))
    (tls_dir / "server.crt").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    (tls_dir / "ca.crt").write_bytes(ca_pem)
    (tls_dir / "bundle.crt").write_bytes(system_ca_pem() + b"\n" + ca_pem)
    # A --cert-dir style directory holding just the lab CA, for clients that take one.
    (tls_dir / "cert-dir").mkdir(exist_ok=True)
    (tls_dir / "cert-dir" / "ca.crt").write_bytes(ca_pem)


def ensure_names_certificate(tls_dir: Path, names: list[str], stem: str = "names") -> tuple[Path, Path]:
    """STEM.crt/STEM.key for exactly these host names, signed by the lab CA (made again when the
    names change); returns (certificate, key)."""
    cert_path, key_path = tls_dir / f"{stem}.crt", tls_dir / f"{stem}.key"
    if cert_path.exists() and key_path.exists() and certificate_names(cert_path) == sorted(names):
        return cert_path, key_path
    ca_key = serialization.load_pem_private_key((tls_dir / "ca.key").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((tls_dir / "ca.crt").read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key, cert = _make_server_cert(names, ca_key, ca_cert)
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def certificate_names(path: Path) -> list[str]:
    """The DNS names a certificate is valid for, sorted."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return sorted(names.get_values_for_type(x509.DNSName))


def system_ca_pem() -> bytes:
    """The system's CA bundle (what SSL_CERT_FILE would have replaced)."""
    for candidate in SYSTEM_CA_BUNDLES:
        if os.path.exists(candidate):
            return Path(candidate).read_bytes()
    return b""
