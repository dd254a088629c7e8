"""The containers-storage: transport: podman's image store, read and written only through podman, as skopeo 1.9 would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

from labcheck.engine.base.errors import ImageNotFoundError, UnsupportedError
from labcheck.engine.base.interfaces import BlobInfo, DestinationDefaults, SourceDefaults
from labcheck.engine.base.options import SideOptions
from labcheck.engine.format.digest import digest_hex, sha256_digest, verify_bytes
from labcheck.engine.format.manifest import (
    OCI_MANIFEST,
    V2S1_TYPES,
    ImageManifest,
    ManifestList,
    guess_media_type,
    parse_manifest,
)
from labcheck.engine.format.platform import choose_instance
from labcheck.engine.fsio.tmpdir import make_temp_dir, remove_tree
from labcheck.engine.reference.refs import StorageReference
from labcheck.engine.transports.containers_storage.podman import PodmanCLI, PodmanClient, StoredImage
from labcheck.engine.transports.dir import DirImageDestination, DirImageSource
from labcheck.engine.transports.oci import OCIImageSource
from labcheck.errors import LabcheckError

MANIFEST_KEY = "manifest"  # the per-platform manifest the image was stored with


def _lookup_name(ref: StorageReference) -> str:
    if ref.image_id:
        return ref.image_id
    assert ref.named is not None
    return str(ref.named)


def _manifest_key(digest: str | None) -> str:
    return f"manifest-{digest}" if digest else MANIFEST_KEY


class StorageImageSource(SourceDefaults):
    """Reads an image from podman's store: its stored manifest as skopeo serves it, layers as uncompressed diffs.

    Like skopeo, the manifest is the one stored (so inspect shows the registry's layer digests) while
    layer_infos_for_copy() names the diffs a copy carries, whose manifest the pipeline rewrites.
    """

    def __init__(self, ref: StorageReference, client: PodmanClient) -> None:
        self.ref = ref
        self.client = client
        found = client.image(_lookup_name(ref))
        if found is None or (ref.image_id and found.id != ref.image_id):
            raise ImageNotFoundError(
                f"reference \"{ref.string_within_transport()}\" does not resolve to an image ID: "
                "identifier is not an image",
                hint="list the store's images with `podman images`; names are fully qualified "
                "(fedora is docker.io/library/fedora:latest)",
            )
        self.image: StoredImage = found
        self._saved_dir: Path | None = None
        self._saved: DirImageSource | OCIImageSource | None = None

    # --- manifests and config, from the store's own records --------------------------------------

    def get_manifest(self, instance_digest: str | None = None) -> tuple[bytes, str]:
        digest = instance_digest or (self.ref.named.digest if self.ref.named else None)
        raw = self.client.big_data(self.image.id, _manifest_key(digest))
        if digest:
            verify_bytes(raw, digest, what="manifest")
        else:
            self._check_default_manifest(raw)
        return raw, guess_media_type(raw)

    def _check_default_manifest(self, raw: bytes) -> None:
        """The image's own manifest must be one podman knows it by, or name the config the image ID is."""
        if sha256_digest(raw) in self.image.digests:
            return
        parsed = parse_manifest(raw)
        if isinstance(parsed, ImageManifest) and parsed.config and parsed.config.digest == f"sha256:{self.image.id}":
            return
        raise LabcheckError(f"the stored manifest of image {self.image.id[:12]} does not belong to it")

    def get_blob(self, info: BlobInfo) -> tuple[BinaryIO, int]:
        import io

        if info.digest == f"sha256:{self.image.id}":
            data = self.client.big_data(self.image.id, info.digest)
            return io.BytesIO(data), len(data)
        return self._saved_source().get_blob(info)

    # --- layers, as the uncompressed diffs podman save writes ------------------------------------

    def _saved_source(self) -> DirImageSource | OCIImageSource:
        if self._saved is None:
            oci = self.image.manifest_type == OCI_MANIFEST
            if self.image.manifest_type in V2S1_TYPES:
                raise UnsupportedError(
                    "copying a schema1 image out of containers-storage: is not supported",
                    hint="convert it first: podman push --format v2s2",
                )
            self._saved_dir = make_temp_dir("containers-storage-")
            target = self._saved_dir / "image"
            self.client.save(self.image.id, target, oci=oci)
            self._saved = OCIImageSource(target) if oci else DirImageSource(target)
        return self._saved

    def layer_infos_for_copy(self, manifest_digest: str) -> list[BlobInfo] | None:
        original = parse_manifest(self.get_manifest()[0])
        if not isinstance(original, ImageManifest) or sha256_digest(self.get_manifest()[0]) != manifest_digest:
            return None
        saved = self._saved_source()
        raw, media_type = saved.get_manifest()
        parsed = parse_manifest(raw, media_type)
        if (
            not isinstance(parsed, ImageManifest)
            or len(parsed.layers) != len(original.layers)
            or parsed.config != original.config
        ):
            raise LabcheckError(f"podman save of image {self.image.id[:12]} does not match its stored manifest")
        return parsed.layers

    def close(self) -> None:
        remove_tree(self._saved_dir)
        self._saved_dir = None
        self._saved = None


class StorageImageDestination(DestinationDefaults):
    """Writes an image into podman's store: a dir: layout that podman pulls (keeping its manifests), then names.

    The result is what skopeo leaves: same image ID, the manifest and the list it was chosen from as
    stored items, Digest/RepoDigests from them, and the name skopeo normalises to (docker.io/library/…).
    """

    def __init__(self, ref: StorageReference, client: PodmanClient) -> None:
        if ref.image_id:
            raise UnsupportedError(
                "writing to containers-storage: with an image ID is not supported",
                hint="name the destination, e.g. containers-storage:fedora",
            )
        if ref.named is not None and ref.named.digest:
            raise UnsupportedError(
                "writing to containers-storage: with a digest reference is not supported",
                hint=f"use a tag: containers-storage:{ref.named.name}:latest",
            )
        self.ref = ref
        self.client = client
        self._tmp: Path | None = make_temp_dir("containers-storage-")
        # A spool podman pulls and we delete: podman makes its store durable, we need no fsync.
        self._layout = DirImageDestination(self._tmp / "image", durable=False)
        self._manifest: tuple[bytes, str] | None = None
        self._toplevel: tuple[bytes, str] | None = None

    def supported_manifest_types(self) -> list[str]:
        return []

    def set_toplevel_manifest(self, manifest: bytes, media_type: str) -> None:
        self._toplevel = (manifest, media_type)

    def put_blob(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        return self._layout.put_blob(stream, info)

    def put_manifest(self, manifest: bytes, media_type: str, instance_digest: str | None = None) -> None:
        if instance_digest is not None:
            raise UnsupportedError(
                'copying multiple images: destination transport "containers-storage" does not support '
                "copying multiple images as a group",
                hint="copy one image (without --all)",
            )
        self._manifest = (manifest, media_type)

    def _podman_would_choose(self, instance_digest: str) -> bool:
        """Whether podman, pulling the list, picks this instance: podman 4.3 ignores --arch for dir:, so it
        must be the host platform's. Otherwise only the instance is stored (the list's digest is then missing)."""
        assert self._toplevel is not None
        listing = parse_manifest(*self._toplevel)
        if not isinstance(listing, ManifestList):
            return False
        try:
            return choose_instance(listing).digest == instance_digest
        except LabcheckError:
            return False

    def commit(self) -> None:
        if self._manifest is None or self._tmp is None:
            raise LabcheckError("internal error: commit() before the manifest was written")
        manifest, media_type = self._manifest
        instance = sha256_digest(manifest)
        if self._toplevel is not None and self._toplevel[0] != manifest and self._podman_would_choose(instance):
            self._layout.put_manifest(self._toplevel[0], self._toplevel[1])
            self._layout.put_manifest(manifest, media_type, instance)
        else:
            self._layout.put_manifest(manifest, media_type)
        self._layout.commit()
        parsed = parse_manifest(manifest, media_type)
        expected = (
            digest_hex(parsed.config.digest) if isinstance(parsed, ImageManifest) and parsed.config else None
        )
        existed = expected is not None and self.client.image(expected) is not None
        image_id = self.client.pull_dir(self._tmp / "image")
        try:
            if expected is not None and image_id != expected:
                raise LabcheckError(f"podman stored image {image_id[:12]}, expected {expected[:12]}")
            if self.ref.named is not None:
                self.client.tag(image_id, str(self.ref.named))
        except BaseException:
            if not existed:
                self.client.remove(image_id)
            raise

    def close(self) -> None:
        remove_tree(self._tmp)
        self._tmp = None


def _client(ref: StorageReference, options: SideOptions | None, client: PodmanClient | None,
            env: Any) -> PodmanClient:
    if client is not None:
        return client
    if env is None and options is not None and options.tool_env:
        env = {**os.environ, **options.tool_env}
    return PodmanCLI(store=ref.store, env=env)


class StorageTransport:
    """The containers-storage: transport: images in podman's storage."""

    name = "containers-storage"

    def open_source(self, ref: StorageReference, options: SideOptions | None = None, *,
                    client: PodmanClient | None = None, env: Any = None) -> StorageImageSource:
        """A source for ref; client defaults to podman's CLI for ref's store, run with env (else this
        process's environment and the options' tool_env)."""
        return StorageImageSource(ref, _client(ref, options, client, env))

    def open_destination(self, ref: StorageReference, options: SideOptions | None = None, *,
                         client: PodmanClient | None = None, env: Any = None) -> StorageImageDestination:
        """A destination for ref; client defaults to podman's CLI for ref's store, run with env (else this
        process's environment and the options' tool_env)."""
        return StorageImageDestination(ref, _client(ref, options, client, env))


TRANSPORT = StorageTransport()
