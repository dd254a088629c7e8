"""The oci: transport: an OCI image layout directory (index.json, blobs/sha256), as skopeo 1.9 writes it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, BinaryIO

from labcheck.engine.base.errors import ImageNotFoundError
from labcheck.engine.base.interfaces import COMPRESS, PRESERVE, BlobInfo, DestinationDefaults, SourceDefaults
from labcheck.engine.base.options import SideOptions
from labcheck.engine.format import gojson
from labcheck.engine.format.digest import digest_hex, sha256_digest, verify_bytes
from labcheck.engine.format.manifest import OCI_INDEX, OCI_MANIFEST, guess_media_type
from labcheck.engine.format.resolve import open_blob_file
from labcheck.engine.fsio import atomicfile
from labcheck.engine.reference.refs import OCIReference
from labcheck.errors import LabcheckError

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT = b'{"imageLayoutVersion": "1.0.0"}'  # skopeo writes this literal, space included


class OCILayoutError(LabcheckError):
    """The layout cannot be read, or names no single image for the reference."""


def _blobs_dir(root: Path, shared_blob_dir: str | os.PathLike[str] | None) -> Path:
    """Where a layout's blobs are: its own blobs/sha256, or --shared-blob-dir's sha256/ (manifests too)."""
    return Path(shared_blob_dir) / "sha256" if shared_blob_dir else root / "blobs" / "sha256"


def _blob_path(blobs: Path, digest: str) -> Path:
    return blobs / digest_hex(digest)


def _read_index(root: Path) -> dict[str, Any]:
    path = root / "index.json"
    try:
        index = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ImageNotFoundError(f"open {path}: no such file or directory", hint=f"{root} is not an OCI layout") from None
    except ValueError as exc:
        raise OCILayoutError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(index, dict):
        raise OCILayoutError(f"{path} is not a JSON object")
    return index


def _descriptor_json(d: dict[str, Any]) -> dict[str, Any]:
    """A descriptor in image-spec's struct order, as Go re-marshals one read from disk."""
    out: dict[str, Any] = {"mediaType": d.get("mediaType", ""), "digest": d.get("digest", ""), "size": d.get("size", 0)}
    if not out["mediaType"]:
        del out["mediaType"]
    if d.get("urls"):
        out["urls"] = d["urls"]
    if d.get("annotations"):
        out["annotations"] = gojson.sorted_map(d["annotations"])
    p = d.get("platform")
    if isinstance(p, dict):
        plat: dict[str, Any] = {"architecture": p.get("architecture", ""), "os": p.get("os", "")}
        for key in ("os.version", "os.features", "variant", "features"):
            if p.get(key):
                plat[key] = p[key]
        out["platform"] = plat
    return out


class OCIImageSource(SourceDefaults):
    """Reads one image (or index) of an OCI layout, chosen by tag name or by position."""

    def __init__(self, path: str | os.PathLike[str], image: str = "", source_index: int | None = None, *,
                 shared_blob_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path)
        self._blobs = _blobs_dir(self.path, shared_blob_dir)
        manifests = _read_index(self.path).get("manifests") or []
        if source_index is not None:
            if not 0 <= source_index < len(manifests):
                raise OCILayoutError(
                    f"index {source_index} is out of range: the index has {len(manifests)} entries"
                )
            self.descriptor = manifests[source_index]
        elif image:
            found = [m for m in manifests if (m.get("annotations") or {}).get(REF_NAME) == image]
            if not found:
                raise ImageNotFoundError(f'no descriptor found for reference "{image}"')
            self.descriptor = found[0]
        elif len(manifests) == 1:
            self.descriptor = manifests[0]
        else:
            raise OCILayoutError(
                "more than one image in oci, choose an image", hint=f"use oci:{path}:<tag>"
            )

    def get_manifest(self, instance_digest: str | None = None) -> tuple[bytes, str]:
        digest = instance_digest or self.descriptor["digest"]
        try:
            data = _blob_path(self._blobs, digest).read_bytes()
        except FileNotFoundError:
            raise ImageNotFoundError(f"manifest {digest} is missing from {self.path}") from None
        verify_bytes(data, digest, what="manifest")
        if instance_digest is None and self.descriptor.get("mediaType"):
            return data, self.descriptor["mediaType"]
        return data, guess_media_type(data)

    def get_blob(self, info: BlobInfo) -> tuple[BinaryIO, int]:
        return open_blob_file(_blob_path(self._blobs, info.digest), info.digest)

    def close(self) -> None:
        pass


class OCIImageDestination(DestinationDefaults):
    """Writes into an OCI layout; index.json (the only thing naming the image) is replaced at commit().

    durable=False (a spool we tar and delete) writes without fsync.
    """

    def __init__(self, path: str | os.PathLike[str], image: str = "", *, durable: bool = True,
                 shared_blob_dir: str | os.PathLike[str] | None = None, accept_uncompressed_layers: bool = False) -> None:
        self.path = Path(path)
        self.image = image
        self._durable = durable
        self._blobs = _blobs_dir(self.path, shared_blob_dir)
        self._accept_uncompressed = accept_uncompressed_layers
        if self.path.exists() and not self.path.is_dir():
            raise OCILayoutError(f"{self.path} exists and is not a directory")
        self._new_files: list[Path] = []
        self._top: dict[str, Any] | None = None
        self._committed = False
        # One writer at a time: index.json is read here and replaced at commit, so two copies at once
        # would each drop the other's tag.
        self._lock = atomicfile.DirectoryLock(self.path)
        self._created_dirs = self._lock.created
        try:
            self._created_dirs += atomicfile.make_dirs(self.path / "blobs")
            self._created_dirs += atomicfile.make_dirs(self._blobs)
            if self._blobs.is_relative_to(self.path):  # a shared blob dir has other writers: their temps stay
                atomicfile.remove_stale_temps(self._blobs)
            atomicfile.remove_stale_temps(self.path, of=("index.json", "oci-layout"))  # the user's files stay
            self._index: dict[str, Any] = (_read_index(self.path) if (self.path / "index.json").exists()
                                           else {"schemaVersion": 2})
        except BaseException:
            self.close()
            raise

    def supported_manifest_types(self) -> list[str]:
        return [OCI_MANIFEST, OCI_INDEX]

    def desired_layer_compression(self) -> str:
        return PRESERVE if self._accept_uncompressed else COMPRESS

    def try_reusing_blob(self, info: BlobInfo, *, source_repository: str | None = None) -> bool:
        return _blob_path(self._blobs, info.digest).is_file()

    def _store(self, digest: str, stream: BinaryIO | None = None, data: bytes | None = None) -> int:
        content = stream if stream is not None else data
        assert content is not None
        return atomicfile.write_recording_new(_blob_path(self._blobs, digest), content, self._new_files,
                                            durable=self._durable)

    def put_blob(self, stream: BinaryIO, info: BlobInfo) -> BlobInfo:
        size = self._store(info.digest, stream=stream)
        return BlobInfo(info.digest, size, info.media_type, info.annotations)

    def put_manifest(self, manifest: bytes, media_type: str, instance_digest: str | None = None) -> None:
        digest = instance_digest or sha256_digest(manifest)
        self._store(digest, data=manifest)
        if instance_digest is None:
            desc: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(manifest)}
            if self.image:
                desc["annotations"] = {REF_NAME: self.image}
            self._top = desc

    def _add_manifest(self, desc: dict[str, Any]) -> list[dict[str, Any]]:
        """skopeo's re-tagging: the name moves to the new entry; an unnamed entry of the same digest is replaced."""
        manifests = [dict(m) for m in self._index.get("manifests") or []]
        name = (desc.get("annotations") or {}).get(REF_NAME)
        if name:
            for m in manifests:
                annotations = m.get("annotations") or {}
                if annotations.get(REF_NAME) == name:
                    m["annotations"] = {k: v for k, v in annotations.items() if k != REF_NAME}
                    break
        for i, m in enumerate(manifests):
            if m.get("digest") == desc["digest"] and not (m.get("annotations") or {}).get(REF_NAME):
                manifests[i] = desc
                return manifests
        manifests.append(desc)
        return manifests

    def commit(self) -> None:
        if self._top is None:
            raise LabcheckError("internal error: commit() before the manifest was written")
        index: dict[str, Any] = {"schemaVersion": self._index.get("schemaVersion", 2)}
        if self._index.get("mediaType"):
            index["mediaType"] = self._index["mediaType"]
        index["manifests"] = [_descriptor_json(m) for m in self._add_manifest(self._top)]
        if self._index.get("annotations"):
            index["annotations"] = gojson.sorted_map(self._index["annotations"])
        if self._durable:
            atomicfile.fsync_dir(self._blobs)
        atomicfile.write_bytes(self.path / "oci-layout", LAYOUT, durable=self._durable)
        atomicfile.write_bytes(self.path / "index.json", gojson.dumps(index).encode(), durable=self._durable)
        if self._durable:
            atomicfile.fsync_dir(self.path)
        self._committed = True

    def close(self) -> None:
        if not self._committed:
            # Under the lock every temporary file here is this copy's: an interrupted blob copy may
            # not have removed its own yet.
            if self._blobs.is_relative_to(self.path):
                atomicfile.remove_stale_temps(self._blobs)
            atomicfile.remove_created(self._new_files, self._created_dirs)
            self._new_files = []
        self._lock.release()


class OCITransport:
    """The oci: transport: an OCI image layout directory."""

    name = "oci"

    def open_source(self, ref: OCIReference, options: SideOptions | None = None) -> OCIImageSource:
        options = options or SideOptions()
        return OCIImageSource(ref.path, ref.image, ref.source_index, shared_blob_dir=options.shared_blob_dir)

    def open_destination(self, ref: OCIReference, options: SideOptions | None = None) -> OCIImageDestination:
        options = options or SideOptions()
        return OCIImageDestination(ref.path, ref.image, shared_blob_dir=options.shared_blob_dir,
                                   accept_uncompressed_layers=options.oci_accept_uncompressed_layers)


TRANSPORT = OCITransport()
