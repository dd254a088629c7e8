"""Engine actions of scenario steps, carried out by the native engine or by skopeo on the host."""

from __future__ import annotations

import contextlib
from typing import Any, Mapping

from labcheck.engine.api import EngineDriver, NativeDriver
from labcheck.engine.options import CopyOptions, Credentials, SideOptions
from labcheck.engine.reference import parse_image_reference
from labcheck.engine.registry_client import RegistryClient
from labcheck.engine.skopeo_driver import SkopeoDriver
from labcheck.environ import scoped_environ
from labcheck.errors import UsageError

DRIVERS = ("native", "skopeo")


def environment(env: Mapping[str, str]):
    """The lab's environment (SSL_CERT_FILE, DOCKER_HOST, CONTAINERS_*) around in-process engine calls."""
    return scoped_environ(env)


def _side(creds: str | None, tls_verify: bool | None = None) -> SideOptions:
    return SideOptions(creds=Credentials.parse(creds) if creds else None, tls_verify=tls_verify)


class StepDriver:
    """copy / inspect / delete with creds as `user:password` strings, as scenario steps give them."""

    def __init__(self, engine: EngineDriver, env: Mapping[str, str]) -> None:
        self.engine = engine
        self.env = dict(env)
        self.name = engine.name

    def _scope(self):
        # The native engine reads the lab's environment from os.environ; skopeo gets it exported.
        return environment(self.env) if isinstance(self.engine, NativeDriver) else contextlib.nullcontext()

    def copy(self, src: str, dst: str, *, src_creds: str | None = None, dest_creds: str | None = None,
             all_images: bool = False, src_tls_verify: bool | None = None,
             dest_tls_verify: bool | None = None) -> str:
        with self._scope():
            result = self.engine.copy(src, dst, src_options=_side(src_creds, src_tls_verify),
                                      dst_options=_side(dest_creds, dest_tls_verify),
                                      options=CopyOptions(all_images=all_images))
        return result.manifest_digest

    def inspect(self, ref: str, *, creds: str | None = None, tls_verify: bool | None = None) -> dict[str, Any]:
        with self._scope():
            return self.engine.inspect(ref, options=_side(creds, tls_verify)).to_json()

    def manifest_digest(self, ref: str, *, creds: str | None = None) -> str:
        return self.inspect(ref, creds=creds)["Digest"]

    def delete(self, ref: str, *, creds: str | None = None) -> None:
        """Delete a tag's manifest from its registry (the undo of a push)."""
        parsed = parse_image_reference(ref)
        named = parsed.docker_reference
        if parsed.transport != "docker" or named is None:
            raise UsageError(f"delete needs a docker:// reference, not {ref}")
        with environment(self.env):
            client = RegistryClient(named.domain, named.path, _side(creds), push=True)
            try:
                digest = client.manifest_digest(named.tag_or_digest or "latest")
                if digest:
                    client.delete_manifest(digest)
            finally:
                client.close()


def make_driver(name: str, host: Any, env: Mapping[str, str]) -> StepDriver:
    if name == "native":
        return StepDriver(NativeDriver(), env)
    if name == "skopeo":
        return StepDriver(SkopeoDriver(host, env=env), env)
    raise UsageError(f"unknown driver '{name}' (choose from {', '.join(DRIVERS)})")
