"""docker:// — images in a container registry, through the Registry HTTP API v2."""

from __future__ import annotations

from typing import BinaryIO

from labcheck.engine.base.errors import DigestMismatchError, UnsupportedError
from labcheck.engine.base.interfaces import COMPRESS, BlobInfo, DestinationDefaults, SourceDefaults
from labcheck.engine.base.options import SideOptions
from labcheck.engine.format.digest import sha256_digest
from labcheck.engine.format.manifest import (
    DOCKER_LIST,
    DOCKER_V2S1,
    DOCKER_V2S1_SIGNED,
    DOCKER_V2S2,
    OCI_INDEX,
    OCI_MANIFEST,
)
from labcheck.engine.fsio import readahead
from labcheck.engine.reference.refs import DockerReference
from labcheck.engine.registry.client import RegistryClient
from labcheck.engine.registry.registries_conf import find_entry, rewrite


def _client(name: str, opts: SideOptions, *, push: bool, use_location: bool) -> RegistryClient:
    """A client for `host/path`, with registries.conf's insecure flag (and location for pulls)."""
    entry = find_entry(name, opts.registries_conf)
    if entry is not None and entry.blocked:
        raise UnsupportedError(f"registry {name.split('/')[0]} is blocked in registries.conf")
    target = rewrite(name, entry) if use_location else name
    host, _, path = target.partition("/")
    return RegistryClient(host, path, opts, push=push, insecure=bool(entry and entry.insecure))


class RegistrySource(SourceDefaults):
    """Reads one image (or list) from a registry."""

    def __init__(self, ref: DockerReference, opts: SideOptions) -> None:
        self.ref = ref
        self.opts = opts
        self.named = ref.named
        self.client = _client(self.named.name, opts, push=False, use_location=True)
        self._tag_client: RegistryClient | None = None
        # As containers/image's source does, the manifest is read now: a missing image or refused
        # credentials are an error of opening the source.
        try:
            self._top = self._fetch_manifest(None)
        except BaseException:
            self.client.close()
            raise

    def repository_name(self) -> str:
        """`host/path` of the repository the blobs are read from (for cross-repository mounts)."""
        return f"{self.client.registry}/{self.client.repository}"

    def get_manifest(self, instance_digest: str | None = None) -> tuple[bytes, str]:
        return self._top if instance_digest is None else self._fetch_manifest(instance_digest)

    def _fetch_manifest(self, instance_digest: str | None) -> tuple[bytes, str]:
        wanted = instance_digest or self.named.digest
        raw, media_type = self.client.get_manifest(wanted or self.named.tag or "latest")
        if wanted and sha256_digest(raw) != wanted:
            raise DigestMismatchError(wanted, sha256_digest(raw), what="manifest")
        return raw, media_type

    def get_blob(self, info: BlobInfo) -> tuple[BinaryIO, int]:
        return self.client.get_blob(info.digest)

    def list_tags(self) -> list[str]:
        # Tag listing goes to the real host name even when registries.conf rewrites pulls.
        if self._tag_client is None:
            self._tag_client = _client(self.named.name, self.opts, push=False, use_location=False)
        return self._tag_client.list_tags()

    def close(self) -> None:
        self.client.close()
        if self._tag_client is not None:
            self._tag_client.close()


class RegistryDestination(DestinationDefaults):
    """Writes one image (or list) to a registry; the top-level manifest PUT is the commit."""

    def __init__(self, ref: DockerReference, opts: SideOptions) -> None:
        self.ref = ref
        self.named = ref.named
        self.client = _client(self.named.name, opts, push=True, use_location=False)

    def supported_manifest_types(self) -> list[str]:
        return [OCI_MANIFEST, DOCKER_V2S2, OCI_INDEX, DOCKER_LIST, DOCKER_V2S1_SIGNED, DOCKER_V2S1]

    def desired_layer_compression(self) -> str:
        return COMPRESS

    def try_reusing_blob(self, info: BlobInfo, *, source_repository: str | None = None) -> bool:
        """True when the repository has the blob (HEAD), or got it by a cross-repository mount
        from source_repository (`host/path`) on the same registry."""
        if self.client.blob_size(info.digest) is not None:
            return True
        if source_repository:
            host, _, path = source_repository.partition("/")
            if host == self.client.registry and path and path != self.client.repository:
                return self.client.mount_blob(info.digest, path)
        return False

    def put_blob(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        """Stream a blob up. A blob the repository already has is not uploaded again (the caller
        verifies what it did not read); this covers configs, which get no reuse check upstream."""
        if self.client.blob_size(info.digest) is not None:
            return info
        with readahead.chunks(stream) as chunks:  # read (and verified) ahead while a chunk is sent
            total = self.client.upload_blob(chunks, info.digest, size=info.size)
        return BlobInfo(info.digest, total, info.media_type)

    def put_manifest(self, manifest: bytes, media_type: str, instance_digest: str | None = None) -> None:
        if instance_digest:
            reference = instance_digest
        else:
            reference = self.named.digest or self.named.tag or "latest"
            if self.named.digest and sha256_digest(manifest) != self.named.digest:
                raise DigestMismatchError(self.named.digest, sha256_digest(manifest), what="manifest")
        self.client.put_manifest(reference, manifest, media_type)

    def commit(self) -> None:
        """Nothing to do: the registry made the image visible with the manifest PUT."""

    def close(self) -> None:
        self.client.close()


class RegistryTransport:
    """The docker:// transport: images in a registry."""

    name = "docker"

    def open_source(self, ref: DockerReference, opts: SideOptions) -> RegistrySource:
        return RegistrySource(ref, opts)

    def open_destination(self, ref: DockerReference, opts: SideOptions) -> RegistryDestination:
        return RegistryDestination(ref, opts)


TRANSPORT = RegistryTransport()
