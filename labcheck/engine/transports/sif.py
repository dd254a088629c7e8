"""The sif: transport: a Singularity image file read as a one-layer OCI image, as skopeo 1.9 reads it.

containers/image's sif/: the primary system partition (squashfs) is unpacked with unsquashfs and tarred
with tar, under fakeroot, into the single layer; a definition file's %environment and %runscript become
/podman/runscript, the image's command. Read only. Needs squashfs-tools and fakeroot, as skopeo does.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

from labcheck.engine.base.errors import ImageNotFoundError, UnsupportedError
from labcheck.engine.base.interfaces import BlobInfo, SourceDefaults
from labcheck.engine.base.options import SideOptions
from labcheck.engine.format import gojson
from labcheck.engine.format.digest import sha256_digest
from labcheck.engine.format.madeup import Layer, added_by, config_json, history_entry, manifest_json
from labcheck.engine.format.manifest import OCI_LAYER, OCI_MANIFEST
from labcheck.engine.fsio.tmpdir import make_temp_dir, remove_tree
from labcheck.engine.reference.refs import SifReference
from labcheck.errors import LabcheckError

# sylabs/sif v2's on-disk layout: little-endian, packed.
_HEADER = struct.Struct("<32s10s3s3s16s8q")
_DESCRIPTOR = struct.Struct("<i?IIIqqqqqqq128s384s")
_PARTITION = struct.Struct("<ii3s")
_MAGIC = b"SIF_MAGIC\x00"
_VERSION = b"01\x00"
_DATA_DEFFILE = 0x4001
_DATA_PARTITION = 0x4004
_PART_PRIMSYS = 2
_ARCHES = {b"01": "386", b"02": "amd64", b"03": "arm", b"04": "arm64", b"05": "ppc64", b"06": "ppc64le",
           b"07": "mips", b"08": "mipsle", b"09": "mips64", b"10": "mips64le", b"11": "s390x", b"12": "riscv64"}
INJECTED_SCRIPT = "/podman/runscript"
_TOOLS_HINT = "sif: images are converted with unsquashfs (squashfs-tools) and fakeroot, as skopeo does"


class SifError(LabcheckError):
    """A SIF file that cannot be read or converted."""


@dataclass(frozen=True)
class _Descriptor:
    data_type: int
    offset: int
    size: int
    extra: bytes


@dataclass(frozen=True)
class SifFile:
    """What skopeo reads of a SIF file: its header facts and its in-use data objects."""

    arch: str
    image_id: str
    modified_at: int
    descriptors: tuple[_Descriptor, ...]

    @classmethod
    def load(cls, stream: BinaryIO) -> SifFile:
        header = _read_exactly(stream, 0, _HEADER.size, "reading global header")
        _, magic, version, arch, raw_id, _, modified, free, total, offset, size, _, _ = _HEADER.unpack(header)
        if magic != _MAGIC:
            raise SifError("loading SIF file: invalid SIF magic", hint="this file is not a SIF image")
        if version != _VERSION:
            raise SifError("loading SIF file: incompatible SIF version")
        if total < 0 or total * _DESCRIPTOR.size > size or free > total:
            raise SifError("loading SIF file: reading descriptors: unexpected EOF")
        raw = _read_exactly(stream, offset, total * _DESCRIPTOR.size, "reading descriptors")
        descriptors = []
        for i in range(total):
            data_type, used, _, _, _, d_offset, d_size, *_rest, extra = _DESCRIPTOR.unpack_from(raw, i * _DESCRIPTOR.size)
            if used:
                descriptors.append(_Descriptor(data_type, d_offset, d_size, extra))
        return cls(_ARCHES.get(arch[:2], "unknown"), str(uuid.UUID(bytes=raw_id)), modified, tuple(descriptors))

    def one(self, wanted: list[_Descriptor]) -> _Descriptor:
        """GetDescriptor's choice: exactly one match, else its error."""
        if not self.descriptors:
            raise SifError("no objects in image")
        if not wanted:
            raise SifError("object not found")
        if len(wanted) > 1:
            raise SifError("multiple objects found")
        return wanted[0]

    def deffile(self) -> _Descriptor | None:
        found = [d for d in self.descriptors if d.data_type == _DATA_DEFFILE]
        return found[0] if len(found) == 1 else None

    def primary_partition(self) -> _Descriptor:
        return self.one([d for d in self.descriptors if d.data_type == _DATA_PARTITION
                         and _PARTITION.unpack_from(d.extra)[1] == _PART_PRIMSYS])


def _read_exactly(stream: BinaryIO, offset: int, size: int, what: str) -> bytes:
    stream.seek(offset)
    data = stream.read(size)
    if len(data) < size:
        raise SifError(f"loading SIF file: {what}: {'EOF' if not data else 'unexpected EOF'}")
    return data


def parse_deffile(text: bytes) -> tuple[list[str], list[str]]:
    """The non-trivial lines of a definition file's %environment and %runscript sections."""
    environment: list[str] = []
    runscript: list[str] = []
    section = None
    for line in text.decode("utf-8", "replace").split("\n"):
        s = line.removesuffix("\r").strip()
        if s == "%environment":
            section = environment
        elif s == "%runscript":
            section = runscript
        elif s.startswith("%"):
            section = None
        elif section is environment:
            if s and not s.startswith("#"):
                environment.append(s)
        elif section is runscript:
            runscript.append(s)
    return environment, runscript


def _copy_range(stream: BinaryIO, offset: int, size: int, out: BinaryIO) -> None:
    stream.seek(offset)
    left = size
    while left:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            raise SifError("converting rootfs from SquashFS to Tarball: EOF")
        out.write(chunk)
        left -= len(chunk)


def _convert(stream: BinaryIO, sif: SifFile, work: Path) -> tuple[Path, str]:
    """The root file system as a tar file in work, and the image's command."""
    command, script = "bash", None
    deffile = sif.deffile()
    if deffile is not None:
        stream.seek(deffile.offset)
        environment, runscript = parse_deffile(stream.read(deffile.size))
        if environment or runscript:
            script = f"#!/bin/bash\n{chr(10).join(environment)}\n{chr(10).join(runscript)}\n".encode()
            command = INJECTED_SCRIPT
    try:
        rootfs = sif.primary_partition()
    except SifError as exc:
        raise SifError(f"converting rootfs from SquashFS to Tarball: looking up rootfs from SIF file: {exc}") from None
    squashfs, tar, root = work / "rootfs.squashfs", work / "rootfs.tar", work / "rootfs"
    with open(squashfs, "wb") as out:
        _copy_range(stream, rootfs.offset, rootfs.size, out)
    if script is not None:
        target = root / INJECTED_SCRIPT.lstrip("/")
        target.parent.mkdir(parents=True, mode=0o755, exist_ok=True)
        target.write_bytes(script)
        target.chmod(0o755 & ~_umask())
    _run_fakeroot(["sh", "-c", 'unsquashfs -d "$1" -f "$2" && tar --acls --xattrs -C "$1" -cpf "$3" ./',
                   "sh", str(root), str(squashfs), str(tar)])
    squashfs.unlink()
    remove_tree(root)
    return tar, command


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _run_fakeroot(argv: list[str]) -> None:
    for tool in ("fakeroot", "unsquashfs", "tar"):
        if shutil.which(tool) is None:
            raise SifError(f"converting rootfs from SquashFS to Tarball: converting image: "
                           f'exec: "{tool}": executable file not found in $PATH', hint=_TOOLS_HINT)
    proc = subprocess.run(["fakeroot", "--", *argv], stdin=subprocess.DEVNULL, capture_output=True)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        raise SifError(f"converting rootfs from SquashFS to Tarball: converting image: "
                       f"exit status {proc.returncode}, output: {output}", hint=_TOOLS_HINT)


def _file_digest(path: Path) -> tuple[str, int]:
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256")
        return "sha256:" + digest.hexdigest(), f.tell()


class SifSource(SourceDefaults):
    """One image: the SIF file's root file system as a plain tar layer, and a made-up config."""

    def __init__(self, ref: SifReference) -> None:
        self.ref = ref
        try:
            stream = open(ref.path, "rb")
        except OSError as exc:
            reason = (exc.strerror or str(exc))
            raise ImageNotFoundError(f"loading SIF file: open {ref.path}: {reason[:1].lower()}{reason[1:]}",
                                     hint="sif: names an existing SIF image file") from None
        self._work: Path | None = make_temp_dir("sif")
        try:
            with stream:
                sif = SifFile.load(stream)
                self._layer_file, command = _convert(stream, sif, self._work)
            digest, size = _file_digest(self._layer_file)
        except BaseException:
            remove_tree(self._work)
            self._work = None
            raise
        created = gojson.time_text(sif.modified_at * 1_000_000_000)
        history = [history_entry(created, added_by(digest), f"imported from SIF, uuid: {sif.image_id}"),
                   history_entry(created, '/bin/sh -c #(nop) CMD ["bash"]', empty_layer=True)]
        self._config = config_json(created=created, architecture=sif.arch, os="linux", cmd=[command],
                                   diff_ids=[digest], history=history)
        self._layer = Layer(digest, size, OCI_LAYER, digest, created)
        self._manifest = manifest_json(self._config, [self._layer], with_media_type=True)

    def get_manifest(self, instance_digest: str | None = None) -> tuple[bytes, str]:
        if instance_digest is not None:
            raise UnsupportedError("manifest lists are not supported by the sif transport")
        return self._manifest, OCI_MANIFEST

    def get_blob(self, info: BlobInfo) -> tuple[BinaryIO, int]:
        if info.digest == sha256_digest(self._config):
            return io.BytesIO(self._config), len(self._config)
        if info.digest == self._layer.digest:
            return open(self._layer_file, "rb"), self._layer.size
        raise SifError(f"no blob with digest {gojson.quote(info.digest)} found")

    def close(self) -> None:
        remove_tree(self._work)
        self._work = None


class SifTransport:
    """The sif: transport: read only, as in skopeo."""

    name = "sif"

    def open_source(self, ref: SifReference, options: SideOptions | None = None) -> SifSource:
        return SifSource(ref)

    def open_destination(self, ref: SifReference, options: SideOptions | None = None) -> NoReturn:
        raise UnsupportedError('"sif:" locations can only be read from, not written to')


TRANSPORT = SifTransport()
