"""One reference type per transport, with skopeo's string forms (each transport's ImageReference in containers/image)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Union

from labcheck.engine.format.digest import digest_problem
from labcheck.engine.reference.names import (
    DEFAULT_TAG,
    DockerName,
    go_quote,
    invalid,
    is_image_id,
)

# oci/internal/oci_util.go: what an image name inside an OCI layout may look like.
_OCI_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_OCI_IMAGE_RE = re.compile(rf"{_OCI_COMPONENT}(?:/{_OCI_COMPONENT})*")


# --- one reference type per transport -----------------------------------------------------------


class _Reference:
    """What every transport's reference shares: its transport name and skopeo's string forms."""

    transport: ClassVar[str]

    def string_within_transport(self) -> str:
        raise NotImplementedError

    @property
    def docker_reference(self) -> DockerName | None:
        """The docker-style name this reference carries, if any (DockerReference() in Go)."""
        return None

    def __str__(self) -> str:
        return f"{self.transport}:{self.string_within_transport()}"


@dataclass(frozen=True)
class DockerReference(_Reference):
    """docker://NAME[:TAG|@DIGEST] — an image in a registry; always has a tag or a digest."""

    named: DockerName
    transport: ClassVar[str] = "docker"

    def __post_init__(self) -> None:
        if self.named.is_name_only:
            raise invalid(f"Docker reference {self.named.familiar} has neither a tag nor a digest")
        if self.named.tag and self.named.digest:
            raise invalid(
                "Docker references with both a tag and digest are currently not supported",
                hint=f"keep only the digest: docker://{self.named.without_tag_and_digest().familiar}"
                f"@{self.named.digest}",
            )

    @property
    def docker_reference(self) -> DockerName:
        return self.named

    def string_within_transport(self) -> str:
        return "//" + self.named.familiar


@dataclass(frozen=True)
class DirReference(_Reference):
    """dir:PATH — one image as loose files in a directory."""

    path: str
    transport: ClassVar[str] = "dir"

    def string_within_transport(self) -> str:
        return self.path


def check_oci_path_and_image(path: str, image: str) -> None:
    if ":" in path:
        raise invalid(f"Invalid OCI reference: path {path} contains a colon")
    if image and not _OCI_IMAGE_RE.fullmatch(image):
        raise invalid(
            f"Invalid image {image}",
            hint="an OCI image name is letters and digits joined by - . _ : @ + or --, in /-separated parts",
        )


@dataclass(frozen=True)
class OCIReference(_Reference):
    """oci:PATH[:IMAGE|:@INDEX] — an OCI image layout; IMAGE is its org.opencontainers.image.ref.name."""

    path: str
    image: str = ""
    source_index: int | None = None
    transport: ClassVar[str] = "oci"

    def __post_init__(self) -> None:
        check_oci_path_and_image(self.path, self.image)
        if self.source_index is not None and self.source_index < 0:
            raise invalid(f"Invalid oci: layout reference: index @{self.source_index} must not be negative")
        if self.source_index is not None and self.image:
            raise invalid(
                f"Invalid oci: layout reference: cannot use both an image {self.image} "
                f"and a source index @{self.source_index}",
                hint=f"use either oci:{self.path}:{self.image} or oci:{self.path}:@{self.source_index}",
            )

    def string_within_transport(self) -> str:
        if self.source_index is not None:
            return f"{self.path}:@{self.source_index}"
        return f"{self.path}:{self.image}"


@dataclass(frozen=True)
class OCIArchiveReference(_Reference):
    """oci-archive:PATH[:IMAGE] — an OCI image layout in a tar file."""

    path: str
    image: str = ""
    transport: ClassVar[str] = "oci-archive"

    def __post_init__(self) -> None:
        check_oci_path_and_image(self.path, self.image)

    def string_within_transport(self) -> str:
        return f"{self.path}:{self.image}"


@dataclass(frozen=True)
class DockerArchiveReference(_Reference):
    """docker-archive:PATH[:NAME:TAG|:@INDEX] — a `docker save` tar file."""

    path: str
    named: DockerName | None = None
    source_index: int | None = None
    transport: ClassVar[str] = "docker-archive"

    def __post_init__(self) -> None:
        if ":" in self.path:
            quoted = go_quote(self.path)
            raise invalid(f"Invalid docker-archive: reference: colon in path {quoted} is not supported")
        if self.named is not None and self.source_index is not None:
            raise invalid("Invalid docker-archive: reference: cannot use both a tag and a source index")
        if self.named is not None:
            self._check_named(self.path, self.named)
        if self.source_index is not None and self.source_index < 0:
            index = self.source_index
            raise invalid(f"Invalid docker-archive: reference: index @{index} must not be negative")

    @staticmethod
    def _check_named(path: str, named: DockerName) -> None:
        hint = f"name the image with a tag: docker-archive:{path}:{named.name}:{DEFAULT_TAG}"
        if not named.tag:
            raise invalid(f"reference does not include a tag: {named}", hint=hint)
        if named.digest:
            raise invalid(f"docker-archive doesn't support digest references: {named}", hint=hint)

    @property
    def docker_reference(self) -> DockerName | None:
        return self.named

    def string_within_transport(self) -> str:
        if self.named is not None:
            return f"{self.path}:{self.named}"
        if self.source_index is not None:
            return f"{self.path}:@{self.source_index}"
        return self.path


@dataclass(frozen=True)
class DaemonReference(_Reference):
    """docker-daemon:NAME:TAG|NAME@DIGEST|sha256:ID — an image in a Docker Engine; no :latest is implied."""

    named: DockerName | None = None
    image_id: str | None = None  # "sha256:<64 hex>"
    transport: ClassVar[str] = "docker-daemon"

    def __post_init__(self) -> None:
        if self.named is not None and self.image_id:
            raise invalid(
                "docker-daemon: reference must not have an image ID and a reference string "
                "specified at the same time"
            )
        if self.named is None and not self.image_id:
            raise invalid("docker-daemon: reference needs an image ID or a name")
        if self.named is not None:
            self._check_named(self.named)

    @staticmethod
    def _check_named(named: DockerName) -> None:
        if named.is_name_only:
            raise invalid(
                f"docker-daemon: reference {named.familiar} has neither a tag nor a digest",
                hint=f"docker-daemon: adds no :latest; try docker-daemon:{named.familiar}:{DEFAULT_TAG}",
            )
        if named.tag and named.digest:
            raise invalid("docker-daemon: references with both a tag and digest are currently not supported")

    @property
    def docker_reference(self) -> DockerName | None:
        return self.named

    def string_within_transport(self) -> str:
        if self.image_id:
            return self.image_id
        assert self.named is not None
        return self.named.familiar


@dataclass(frozen=True)
class StoreSpec:
    """The `[driver@graphroot+runroot:option,…]` of containers-storage references; "" is the default."""

    driver: str = ""
    graph_root: str = ""
    run_root: str = ""
    options: tuple[str, ...] = ()

    def __str__(self) -> str:
        driver = f"{self.driver}@" if self.driver else ""
        run_root = f"+{self.run_root}" if self.run_root else ""
        options = ":" + ",".join(self.options) if self.options else ""
        return f"[{driver}{self.graph_root}{run_root}{options}]"


@dataclass(frozen=True)
class StorageReference(_Reference):
    """containers-storage:[STORE]NAME[:TAG][@DIGEST][@ID] — an image in podman's storage.

    Unlike skopeo, str() shows the store specification only when one was given: skopeo fills
    in the defaults from storage.conf, which a parser cannot know.
    """

    store: StoreSpec | None = None
    named: DockerName | None = None
    image_id: str | None = None  # 64 hex digits, no algorithm prefix
    transport: ClassVar[str] = "containers-storage"

    def __post_init__(self) -> None:
        if self.named is None and not self.image_id:
            raise invalid("invalid reference", hint="name an image (fedora:latest) or an ID (@<64 hex>)")
        if self.named is not None and self.named.is_name_only:
            raise invalid(f"reference {self.named} has neither a tag nor a digest: invalid reference")
        if self.image_id and not is_image_id(self.image_id):
            problem = digest_problem("sha256:" + self.image_id)
            raise invalid(f"invalid ID value {go_quote(self.image_id)}: {problem}: invalid reference")

    @property
    def docker_reference(self) -> DockerName | None:
        return self.named

    def string_within_transport(self) -> str:
        text = str(self.store) if self.store else ""
        if self.named is not None:
            text += str(self.named)
        if self.image_id:
            text += f"@{self.image_id}"
        return text


@dataclass(frozen=True)
class SifReference(_Reference):
    """sif:PATH — a Singularity image file, read only; its squashfs root file system becomes one layer."""

    path: str
    transport: ClassVar[str] = "sif"

    def string_within_transport(self) -> str:
        return self.path


TARBALL_SEPARATOR = ":"


@dataclass(frozen=True)
class TarballReference(_Reference):
    """tarball:FILE[:FILE…] — layer tarballs (gzip or plain; "-" is stdin) made into an image, read only."""

    filenames: tuple[str, ...]
    transport: ClassVar[str] = "tarball"

    def __post_init__(self) -> None:
        for path in self.filenames:
            if TARBALL_SEPARATOR in path:
                raise invalid(
                    f"Invalid path {go_quote(path)}: paths including the separator "
                    f"{go_quote(TARBALL_SEPARATOR)} are not supported"
                )

    def string_within_transport(self) -> str:
        return TARBALL_SEPARATOR.join(self.filenames)


ImageReference = Union[
    DockerReference,
    DirReference,
    OCIReference,
    OCIArchiveReference,
    DockerArchiveReference,
    DaemonReference,
    StorageReference,
    SifReference,
    TarballReference,
]

