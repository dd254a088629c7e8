"""RegistryQueries answered on the checker's own machine by labcheck's engine (no skopeo needed)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping, TypeVar

from labcheck.checks.base import PlatformDigest
from labcheck.checks.query_cache import QueryCache
from labcheck.engine import inspect as engine_inspect
from labcheck.engine.base.interfaces import ImageSource
from labcheck.engine.base.options import Credentials, SideOptions
from labcheck.engine.format.manifest import ManifestList, manifest_digest, parse_manifest
from labcheck.engine.format.platform import Platform
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.engine.transports import open_source
from labcheck.environ import options_or_environ

T = TypeVar("T")

@dataclass(frozen=True)
class EngineQueries:
    """Opens `transport:ref` with the engine's transports and answers from what it reads.

    The options are those of skopeo's side flags, for the checker's machine: the lab world's
    CA directory goes in cert_dir, or its CA bundle in env as SSL_CERT_FILE. With a cache,
    answers are remembered and shared (see query_cache.py).
    """

    cert_dir: str | None = None  # --cert-dir: *.crt CAs for the registries
    tls_verify: bool | None = None  # None: verify unless registries.conf marks the registry insecure
    registries_conf: str | None = None
    authfile: str | None = None  # used when a query is given no creds
    env: Mapping[str, str] = field(default_factory=dict)  # the lab's environment, for the engine
    cache: QueryCache | None = field(default=None, compare=False, repr=False)

    def manifest_digest(self, ref: str, *, creds: str | None = None) -> str:
        """The digest of the top-level manifest: a list's own digest for a list."""
        return manifest_digest(self._manifest(ref, creds)[0])

    def inspect(self, ref: str, *, creds: str | None = None) -> dict[str, Any]:
        """What `skopeo inspect` prints for ref (Digest is the list's for a list, the rest the checker's platform's)."""
        parsed = parse_image_reference(ref)
        name = parsed.docker_reference.name if parsed.docker_reference is not None else ""

        def run(source: ImageSource, options: SideOptions) -> dict[str, Any]:
            return engine_inspect.inspect_image(source, options, list_tags=False, name=name).to_json()

        return self._cached("inspect", ref, creds, lambda: self._with_source(ref, creds, run))

    def instances(self, ref: str, *, creds: str | None = None) -> list[PlatformDigest]:
        """Every single image ref names, with its platform: a list's instances, or the image itself."""
        raw, media_type = self._manifest(ref, creds)
        parsed = parse_manifest(raw, media_type)
        if isinstance(parsed, ManifestList):  # the manifest already read says it all
            return [PlatformDigest(i.digest, str(i.platform) if i.platform else "") for i in parsed.instances]

        def run(source: ImageSource, options: SideOptions) -> list[PlatformDigest]:
            return [PlatformDigest(entry.digest, str(Platform(entry.architecture, entry.os, entry.variant)))
                    for entry in engine_inspect.inspect_platforms(source)]

        return self._cached("instances", ref, creds, lambda: self._with_source(ref, creds, run))

    def _manifest(self, ref: str, creds: str | None) -> tuple[bytes, str]:
        """The raw top-level manifest of ref and its media type."""
        return self._cached("manifest", ref, creds,
                            lambda: self._with_source(ref, creds, lambda source, _: source.get_manifest()))

    def _cached(self, question: str, ref: str, creds: str | None, ask: Callable[[], T]) -> T:
        if self.cache is None:
            return ask()
        key: Hashable = (question, ref, creds, self.cert_dir, self.tls_verify, self.registries_conf, self.authfile,
                         tuple(sorted(self.env.items())))
        return self.cache.get(key, ask)

    def _with_source(self, ref: str, creds: str | None, use: Callable[[ImageSource, SideOptions], T]) -> T:
        parsed = parse_image_reference(ref)
        options, environment = self._options(parsed.transport, creds)
        with environment:
            source = open_source(parsed, options)
            try:
                return use(source, options)
            finally:
                source.close()

    def _options(self, transport: str, creds: str | None) -> tuple[SideOptions, contextlib.AbstractContextManager]:
        """The side options, and the os.environ the engine still needs around the call.

        The lab's CA bundle, registries.conf, auth file and Docker socket become options, so queries
        of many hosts run at once; an environment the engine can only read from os.environ is set
        there for the call by scoped_environ, one call at a time.
        """
        options = SideOptions(creds=Credentials.parse(creds) if creds else None, authfile=self.authfile,
                              tls_verify=self.tls_verify, cert_dir=self.cert_dir, registries_conf=self.registries_conf)
        return options_or_environ(options, self.env)
