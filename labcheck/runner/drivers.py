"""Who carries out engine actions: the native engine in this process (on this machine)."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Mapping

from labcheck.engine.copy import copy_image
from labcheck.engine.inspect import inspect_image
from labcheck.engine.options import CopyOptions, Credentials, SideOptions
from labcheck.engine.reference import parse_image_reference
from labcheck.engine.transports import transport_module


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """The lab's environment (SSL_CERT_FILE, DOCKER_HOST, CONTAINERS_*) for in-process engine calls."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _side(creds: str | None, tls_verify: bool | None = None) -> SideOptions:
    return SideOptions(creds=Credentials.parse(creds) if creds else None, tls_verify=tls_verify)


class NativeDriver:
    """Engine actions by labcheck's own engine, on the machine labcheck runs on."""

    name = "native"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env or {})

    def copy(self, src: str, dst: str, *, src_creds: str | None = None, dest_creds: str | None = None,
             all_images: bool = False, src_tls_verify: bool | None = None,
             dest_tls_verify: bool | None = None) -> str:
        with environment(self.env):
            result = copy_image(parse_image_reference(src), parse_image_reference(dst),
                                src_options=_side(src_creds, src_tls_verify),
                                dst_options=_side(dest_creds, dest_tls_verify),
                                options=CopyOptions(all_images=all_images))
        return result.manifest_digest

    def inspect(self, ref: str, *, creds: str | None = None, tls_verify: bool | None = None) -> dict:
        with environment(self.env):
            parsed = parse_image_reference(ref)
            options = _side(creds, tls_verify)
            source = transport_module(parsed.transport).open_source(parsed, options)
            try:
                named = parsed.docker_reference
                name = named.name if parsed.transport == "docker" and named is not None else ""
                return inspect_image(source, options, name=name).to_json()
            finally:
                source.close()

    def manifest_digest(self, ref: str, *, creds: str | None = None) -> str:
        return self.inspect(ref, creds=creds)["Digest"]

    def delete(self, ref: str, *, creds: str | None = None) -> None:
        from labcheck.engine.registry_client import RegistryClient

        parsed = parse_image_reference(ref)
        if parsed.transport != "docker":
            raise ValueError("delete works on docker:// references only")
        named = parsed.docker_reference
        with environment(self.env):
            client = RegistryClient(named.domain, named.path, _side(creds), push=True)
            try:
                digest = client.manifest_digest(named.tag_or_digest or "latest")
                if digest:
                    client.delete_manifest(digest)
            finally:
                client.close()
