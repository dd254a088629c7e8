"""A token server as distribution's `auth: token` expects: ES256 JWTs with an x5c header.

The registry is configured with `rootcertbundle` = `issuer.cert_path`; the signing certificate
is self-signed and in that bundle, so the x5c chain verifies. Users are checked with Basic auth;
anonymous requests get pull access only (when allowed).
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.servers.base import RecordingServer

ISSUER = "labcheck-test-issuer"
SERVICE = "labcheck-test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signing_pair() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labcheck test token signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


class TokenIssuer(RecordingServer):
    """Issues tokens at `realm`; `token_requests` counts what it was asked (scopes, user)."""

    def __init__(self, workdir: Path, tls_dir: Path, *, users: dict[str, str]) -> None:
        super().__init__(_TokenHandler, tls_dir=tls_dir)
        self.users = users
        self.anonymous_pull = True
        self.token_field = "token"  # or "access_token" (OAuth2 style)
        self.expires_in: int | None = 300
        self.narrow_tokens = 0  # the next N tokens grant no access at all (-> insufficient_scope)
        self.token_requests: list[dict] = []
        self._state_lock = threading.Lock()
        self._key, self._cert = _signing_pair()
        self.cert_path = workdir / "token-signer.crt"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    def issue(self, subject: str, access: list[dict]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + (self.expires_in or 60),
                  "nbf": now - 1, "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def grant(self, user: str | None, scopes: list[str]) -> list[dict]:
        with self._state_lock:
            if self.narrow_tokens > 0:
                self.narrow_tokens -= 1
                return []
        allowed = {"pull", "push"} if user else ({"pull"} if self.anonymous_pull else set())
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if a in allowed]
            if kind == "repository" and granted:
                access.append({"type": "repository", "name": name, "actions": granted})
        return access


class _TokenHandler(BaseHTTPRequestHandler):
    server_version = "labcheck-token-issuer"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        issuer: TokenIssuer = self.server.owner  # type: ignore[attr-defined]
        issuer.record(self)
        url = urlparse(self.path)
        query = parse_qs(url.query)
        user = self._user(issuer)
        issuer.token_requests.append({"scopes": query.get("scope", []), "user": user,
                                      "service": query.get("service", [""])[0]})
        if url.path != "/token":
            return self._answer(404, {"details": "not found"})
        if user is False or (user is None and not issuer.anonymous_pull):
            return self._answer(401, {"details": "invalid username or password"})
        body: dict = {issuer.token_field: issuer.issue(user or "", issuer.grant(user, query.get("scope", [])))}
        if issuer.expires_in is not None:
            body["expires_in"] = issuer.expires_in
        self._answer(200, body)

    def _user(self, issuer: TokenIssuer) -> str | None | bool:
        """The authenticated user, None when anonymous, False when the credentials are wrong."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if issuer.users.get(user) == password and password else False

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
