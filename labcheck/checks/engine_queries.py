"""RegistryQueries answered on the checker's own machine by labcheck's engine (no skopeo needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

from labcheck.checks.base import PlatformDigest
from labcheck.engine import inspect as engine_inspect
from labcheck.engine.manifest import manifest_digest
from labcheck.engine.options import Credentials, SideOptions
from labcheck.engine.reference import parse_image_reference
from labcheck.engine.transports import transport_module
from labcheck.engine.types import ImageSource
from labcheck.environ import scoped_environ

T = TypeVar("T")


@dataclass(frozen=True)
class EngineQueries:
    """Opens `transport:ref` with the engine's transports and answers from what it reads.

    The options are those of skopeo's side flags, for the checker's machine: the lab world's
    CA directory goes in cert_dir, or its CA bundle in env as SSL_CERT_FILE.
    """

    cert_dir: str | None = None  # --cert-dir: *.crt CAs for the registries
    tls_verify: bool | None = None  # None: verify unless registries.conf marks the registry insecure
    registries_conf: str | None = None
    authfile: str | None = None  # used when a query is given no creds
    env: Mapping[str, str] = field(default_factory=dict)  # set in os.environ while a query runs

    def manifest_digest(self, ref: str, *, creds: str | None = None) -> str:
        """The digest of the top-level manifest: a list's own digest for a list."""
        return self._with_source(ref, creds, lambda source: manifest_digest(source.get_manifest()[0]))

    def inspect(self, ref: str, *, creds: str | None = None) -> dict[str, Any]:
        """What `skopeo inspect` prints for ref (Digest is the list's for a list, the rest the checker's platform's)."""
        parsed = parse_image_reference(ref)
        name = parsed.docker_reference.name if parsed.docker_reference is not None else ""
        options = self._options(creds)

        def run(source: ImageSource) -> dict[str, Any]:
            return engine_inspect.inspect_image(source, options, list_tags=False, name=name).to_json()

        return self._with_source(ref, creds, run)

    def instances(self, ref: str, *, creds: str | None = None) -> list[PlatformDigest]:
        """Every single image ref names, with its platform: a list's instances, or the image itself."""

        def run(source: ImageSource) -> list[PlatformDigest]:
            return [
                PlatformDigest(entry.digest, "/".join(p for p in (entry.os, entry.architecture, entry.variant) if p))
                for entry in engine_inspect.inspect_platforms(source)
            ]

        return self._with_source(ref, creds, run)

    def _options(self, creds: str | None) -> SideOptions:
        return SideOptions(
            creds=Credentials.parse(creds) if creds else None,
            authfile=self.authfile,
            tls_verify=self.tls_verify,
            cert_dir=self.cert_dir,
            registries_conf=self.registries_conf,
        )

    def _with_source(self, ref: str, creds: str | None, use: Callable[[ImageSource], T]) -> T:
        parsed = parse_image_reference(ref)
        with self._environment():
            source = transport_module(parsed.transport).open_source(parsed, self._options(creds))
            try:
                return use(source)
            finally:
                source.close()

    def _environment(self):
        """The engine reads SSL_CERT_FILE, REGISTRY_AUTH_FILE, … from os.environ: set env there meanwhile."""
        return scoped_environ(self.env)
