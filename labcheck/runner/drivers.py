"""Engine actions of scenario steps, carried out by the native engine or by skopeo on the host."""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Mapping

from labcheck.engine.api import EngineDriver, NativeDriver
from labcheck.engine.base.options import CopyOptions, Credentials, SideOptions
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.engine.registry.client import RegistryClient
from labcheck.engine.skopeo_driver import SkopeoDriver
from labcheck.environ import options_or_environ
from labcheck.errors import UsageError
from labcheck.runner.options import DRIVERS


def _side(creds: str | None, tls_verify: bool | None = None) -> SideOptions:
    return SideOptions(creds=Credentials.parse(creds) if creds else None, tls_verify=tls_verify)


class StepDriver:
    """copy / inspect / delete with creds as `user:password` strings, as scenario steps give them."""

    def __init__(self, engine: EngineDriver, env: Mapping[str, str]) -> None:
        self.engine = engine
        self.env = dict(env)
        self.name = engine.name

    def _with_env(self, *sides: SideOptions) -> tuple[list[SideOptions], ContextManager[None]]:
        """The sides carrying the lab's environment, and the context for the call. The native engine
        takes it as options (os.environ only for what it can read nowhere else); skopeo gets it exported."""
        if not isinstance(self.engine, NativeDriver):
            return list(sides), contextlib.nullcontext()
        completed = [options_or_environ(side, self.env) for side in sides]
        scopes = [scope for _, scope in completed]
        return [side for side, _ in completed], scopes[0]  # the same env: the same context for every side

    def copy(self, src: str, dst: str, *, src_creds: str | None = None, dest_creds: str | None = None,
             all_images: bool = False, src_tls_verify: bool | None = None,
             dest_tls_verify: bool | None = None) -> str:
        (src_options, dst_options), scope = self._with_env(_side(src_creds, src_tls_verify),
                                                          _side(dest_creds, dest_tls_verify))
        with scope:
            result = self.engine.copy(src, dst, src_options=src_options, dst_options=dst_options,
                                      options=CopyOptions(all_images=all_images))
        return result.manifest_digest

    def inspect(self, ref: str, *, creds: str | None = None, tls_verify: bool | None = None) -> dict[str, Any]:
        (options,), scope = self._with_env(_side(creds, tls_verify))
        with scope:
            return self.engine.inspect(ref, options=options).to_json()

    def manifest_digest(self, ref: str, *, creds: str | None = None) -> str:
        return self.inspect(ref, creds=creds)["Digest"]

    def delete(self, ref: str, *, creds: str | None = None) -> None:
        """Delete a tag's manifest from its registry (the undo of a push)."""
        parsed = parse_image_reference(ref)
        named = parsed.docker_reference
        if parsed.transport != "docker" or named is None:
            raise UsageError(f"delete needs a docker:// reference, not {ref}")
        options, scope = options_or_environ(_side(creds), self.env)
        with scope:
            client = RegistryClient(named.domain, named.path, options, push=True)
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
