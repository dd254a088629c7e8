"""The narrow podman client the containers-storage: transport depends on, and its implementation over podman's CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol, Sequence

from labcheck.engine.reference.refs import StoreSpec
from labcheck.errors import LabcheckError

_NOT_FOUND = ("image not known", "no such image")


class PodmanError(LabcheckError):
    """podman refused or failed; keeps the command line (without the environment) and what podman said."""

    def __init__(
        self, argv: Sequence[str], returncode: int, stderr: str, *, command: str = "", hint: str | None = None
    ) -> None:
        said = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {returncode}"
        super().__init__(f"podman {command}: {said}".replace(": Error: ", ": "), hint=hint)
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class StoredImage:
    """What podman tells about an image in its store."""

    id: str  # 64 hex digits: the config digest for schema2/OCI images
    digest: str  # the image's Digest (of the manifest it was copied from; a list's when it came from one)
    digests: tuple[str, ...]  # Digest and every digest RepoDigests names
    names: tuple[str, ...]
    manifest_type: str


@dataclass(frozen=True)
class PullPlatform:
    """Which instance of a list podman must pick."""

    os: str = ""
    arch: str = ""
    variant: str = ""


class PodmanClient(Protocol):
    """The subset of podman that containers-storage: uses. The store is only ever changed through podman."""

    def image(self, name_or_id: str) -> StoredImage | None:
        """The image a full name, name@digest or ID resolves to; None when there is none."""

    def big_data(self, image_id: str, key: str) -> bytes:
        """A stored item of the image, read-only: "manifest", "manifest-<digest>", or the config "<digest>"."""

    def save(self, image_id: str, directory: Path, *, oci: bool) -> None:
        """Write the image as podman save --format docker-dir|oci-dir: layers as uncompressed diffs."""

    def pull_dir(self, directory: Path, platform: PullPlatform | None = None) -> str:
        """Store the image of a dir: layout (keeping its manifests byte for byte), unnamed; returns its ID."""

    def tag(self, image_id: str, name: str) -> None:
        """Give the image a (fully qualified) name; another image holding it loses it."""

    def remove(self, image_id: str) -> None:
        """Remove an image this client stored (used to undo a failed commit)."""


def store_flags(store: StoreSpec | None) -> list[str]:
    """skopeo's [driver@graphroot+runroot:options] as podman's global flags."""
    if store is None:
        return []
    flags: list[str] = []
    if store.driver:
        flags += ["--storage-driver", store.driver]
    if store.graph_root:
        flags += ["--root", store.graph_root]
    if store.run_root:
        flags += ["--runroot", store.run_root]
    for option in store.options:
        flags += ["--storage-opt", option]
    return flags


def big_data_file_name(key: str) -> str:
    """containers/storage's file name for a big-data key: the key, or `=` + base64 when it is not a safe name."""
    safe = key and not key.startswith(".") and not any(c in key for c in "/:=")
    return key if safe else "=" + base64.standard_b64encode(key.encode()).decode()


class PodmanCLI:
    """PodmanClient over the `podman` command, run with the environment it was given (else the process's)."""

    def __init__(
        self,
        *,
        store: StoreSpec | None = None,
        env: Mapping[str, str] | None = None,
        podman: str = "podman",
        timeout: float = 1800,
    ) -> None:
        self.store = store
        self.env = dict(env) if env is not None else None
        self.podman = podman
        self.timeout = timeout
        self._graph_dir: Path | None = None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [self.podman, *store_flags(self.store), *args]
        try:
            proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise LabcheckError(
                f"{self.podman} is not installed", hint="containers-storage: works through podman; install it"
            ) from None
        if proc.returncode != 0:
            raise PodmanError(argv, proc.returncode, proc.stderr, command=" ".join(args[:2]))
        return proc

    def image(self, name_or_id: str) -> StoredImage | None:
        try:
            out = self._run("image", "inspect", "--format", "json", name_or_id).stdout
        except PodmanError as exc:
            if any(text in exc.stderr for text in _NOT_FOUND):
                return None
            raise
        found = json.loads(out or "[]")
        if not found:
            return None
        data = found[0]
        digests = [data.get("Digest") or ""]
        digests += [d.rpartition("@")[2] for d in data.get("RepoDigests") or []]
        return StoredImage(
            id=data["Id"],
            digest=data.get("Digest") or "",
            digests=tuple(dict.fromkeys(d for d in digests if d)),
            names=tuple(data.get("RepoTags") or ()),
            manifest_type=data.get("ManifestType") or "",
        )

    def _graph_images_dir(self) -> Path:
        if self._graph_dir is None:
            out = self._run("info", "--format", "{{.Store.GraphRoot}}\t{{.Store.GraphDriverName}}").stdout
            root, _, driver = out.strip().partition("\t")
            self._graph_dir = Path(root) / f"{driver}-images"
        return self._graph_dir

    def big_data(self, image_id: str, key: str) -> bytes:
        path = self._graph_images_dir() / image_id / big_data_file_name(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise LabcheckError(
                f"image {image_id[:12]} has no stored {key!r}",
                hint="the image was not stored by a containers/image copy (podman pull, skopeo copy)",
            ) from None
        except PermissionError:
            raise LabcheckError(
                f"cannot read {path}", hint="read containers-storage: as the user who owns the store"
            ) from None

    def save(self, image_id: str, directory: Path, *, oci: bool) -> None:
        fmt = "oci-dir" if oci else "docker-dir"
        self._run("save", "--quiet", "--format", fmt, "--output", os.fspath(directory), image_id)

    def pull_dir(self, directory: Path, platform: PullPlatform | None = None) -> str:
        args = ["pull", "--quiet"]
        if platform is not None:
            for flag, value in (("--os", platform.os), ("--arch", platform.arch), ("--variant", platform.variant)):
                if value:
                    args += [flag, value]
        out = self._run(*args, f"dir:{os.fspath(directory)}").stdout.split()
        if not out:
            raise LabcheckError("podman pull printed no image ID")
        return out[-1]

    def tag(self, image_id: str, name: str) -> None:
        self._run("tag", image_id, name)

    def remove(self, image_id: str) -> None:
        self._run("rmi", image_id)
