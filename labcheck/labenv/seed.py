"""The seed image `fedora`, built by the project (no pull from the internet), byte-for-byte reproducible."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from labcheck.engine.format.digest import sha256_digest
from labcheck.engine.registry.client import RegistryClient

CREATED = "2023-08-04T06:50:36Z"
EPOCH = 1691131836  # CREATED as a Unix time: every file in the layer has this mtime
SEED_REPOSITORY = "fedora"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APPLETS = ("sh", "ls", "cat", "echo", "env", "id", "sleep", "uname", "ps", "grep", "head", "true", "false")
# busybox has no `bash` applet; a script that hands over to its sh keeps `podman run … bash` working.
BASH_WRAPPER = b'#!/bin/sh\nexec /bin/sh "$@"\n'


DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True)
class BuiltImage:
    """One single-platform image: its blobs by digest and its manifest."""

    blobs: dict[str, bytes]
    manifest: bytes
    architecture: str
    variant: str = ""

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def _canonical(value: object) -> bytes:
    return json.dumps(value, indent=None, separators=(",", ":")).encode()


def os_release(version: int) -> str:
    return (
        f"NAME=\"Fedora Linux\"\nVERSION=\"{version} (Container Image)\"\nID=fedora\n"
        f"VERSION_ID={version}\nVERSION_CODENAME=\"\"\nPLATFORM_ID=\"platform:f{version}\"\n"
        f"PRETTY_NAME=\"Fedora Linux {version} (Container Image)\"\nANSI_COLOR=\"0;38;2;60;110;180\"\n"
        f"CPE_NAME=\"cpe:/o:fedoraproject:fedora:{version}\"\nHOME_URL=\"https://fedoraproject.org/\"\n"
        f"SUPPORT_URL=\"https://ask.fedoraproject.org/\"\nBUG_REPORT_URL=\"https://bugzilla.redhat.com/\"\n"
        f"VARIANT=\"Container Image\"\nVARIANT_ID=container\n"
    )


def _tar_entry(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, mode: int = 0o644,
               directory: bool = False, link: str | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "root", "root"
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, mode
        tar.addfile(info)
    elif link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, link, 0o777
        tar.addfile(info)
    else:
        assert data is not None
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))


def rootfs_tar(version: int, *, busybox: Path | None) -> bytes:
    """The one layer: /etc/os-release, a few files, and (given a static busybox) busybox as /bin/sh and /bin/bash."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory, mode in (("bin", 0o755), ("etc", 0o755), ("root", 0o550), ("tmp", 0o1777),
                                ("usr", 0o755), ("usr/bin", 0o755), ("usr/lib", 0o755), ("var", 0o755)):
            _tar_entry(tar, directory, directory=True, mode=mode)
        _tar_entry(tar, "usr/lib/os-release", data=os_release(version).encode())
        _tar_entry(tar, "etc/os-release", link="../usr/lib/os-release")
        _tar_entry(tar, "etc/fedora-release", data=f"Fedora release {version}\n".encode())
        _tar_entry(tar, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/bash\n")
        _tar_entry(tar, "etc/group", data=b"root:x:0:\n")
        if busybox is not None:
            _tar_entry(tar, "bin/busybox", data=busybox.read_bytes(), mode=0o755)
            for applet in APPLETS:
                _tar_entry(tar, f"bin/{applet}", link="busybox")
            _tar_entry(tar, "bin/bash", data=BASH_WRAPPER, mode=0o755)
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip: no file name, mtime 0."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as stream:
        stream.write(data)
    return out.getvalue()


def build_image(version: int, *, busybox: Path, architecture: str = "amd64", variant: str = "") -> BuiltImage:
    """A fedora-like single-platform image in Docker v2s2 form."""
    # Only the host's own architecture can get a working shell: busybox-static is amd64 here.
    layer_tar = rootfs_tar(version, busybox=busybox if architecture == "amd64" else None)
    layer = gzip_bytes(layer_tar)
    config: dict[str, object] = {
        "architecture": architecture,
        "config": {
            "Env": [f"DISTTAG=f{version}container", f"FGC=f{version}", "container=oci", f"PATH={DEFAULT_PATH}"],
            "Cmd": ["/bin/bash"],
            "Labels": {"license": "MIT", "name": "fedora", "vendor": "Fedora Project", "version": str(version)},
        },
        "created": CREATED,
        "docker_version": "1.10.1",
        "history": [{"created": CREATED, "created_by": "labcheck seed image (fedora-like, offline lab world)"}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_tar)]},
    }
    if variant:
        config["variant"] = variant
    config_bytes = _canonical(config)
    manifest = _canonical({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(config_bytes), "digest": sha256_digest(config_bytes)},
        "layers": [{"mediaType": DOCKER_LAYER, "size": len(layer), "digest": sha256_digest(layer)}],
    })
    blobs = {sha256_digest(config_bytes): config_bytes, sha256_digest(layer): layer}
    return BuiltImage(blobs=blobs, manifest=manifest, architecture=architecture, variant=variant)


def manifest_list(images: list[BuiltImage]) -> bytes:
    entries = []
    for image in images:
        platform: dict[str, str] = {"architecture": image.architecture, "os": "linux"}
        if image.variant:
            platform["variant"] = image.variant
        entries.append({"mediaType": DOCKER_MANIFEST, "size": len(image.manifest),
                        "digest": image.digest, "platform": platform})
    return _canonical({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries})


@dataclass(frozen=True)
class SeedSet:
    """Every tag of the seed repository and what it points at."""

    images: list[BuiltImage]
    tags: dict[str, tuple[bytes, str]]  # tag -> (manifest bytes, media type)


def build_seed(busybox: Path) -> SeedSet:
    """fedora:38/39/40 single images; fedora:latest a list of 38 on amd64 and arm64; busybox is their shell."""
    by_version = {version: build_image(version, busybox=busybox) for version in (38, 39, 40)}
    arm = build_image(38, busybox=busybox, architecture="arm64", variant="v8")
    tags: dict[str, tuple[bytes, str]] = {str(v): (image.manifest, DOCKER_MANIFEST) for v, image in by_version.items()}
    tags["latest"] = (manifest_list([by_version[38], arm]), DOCKER_LIST)
    return SeedSet(images=[*by_version.values(), arm], tags=tags)


def push_seed(client: RegistryClient, seed: SeedSet) -> str:
    """Push the seed to client's repository (skipping what is there); returns latest's digest."""
    for image in seed.images:
        for digest, blob in image.blobs.items():
            if client.blob_size(digest) is None:
                client.upload_blob(iter([blob]), digest)
        client.put_manifest(image.digest, image.manifest, DOCKER_MANIFEST)
    for tag, (manifest, media_type) in seed.tags.items():
        client.put_manifest(tag, manifest, media_type)
    return sha256_digest(seed.tags["latest"][0])
