"""A small SIF writer for tests (the Singularity Image Format, as sylabs/sif v2 lays it out).

Only what skopeo's sif: transport reads: the global header, one squashfs partition marked as the
primary system, and optionally a definition file.
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

MAGIC = b"SIF_MAGIC\x00"
VERSION = b"01\x00"
ARCH_CODES = {"386": b"01", "amd64": b"02", "arm": b"03", "arm64": b"04", "ppc64le": b"06", "s390x": b"11"}
DATA_DEFFILE = 0x4001
DATA_PARTITION = 0x4004
FS_SQUASH = 1
PART_PRIMSYS = 2
HEADER = struct.Struct("<32s10s3s3s16s8q")
DESCRIPTOR = struct.Struct("<i?IIIqqqqqqq128s384s")
DATA_ALIGN = 4096


def write_sif(path: Path, squashfs: bytes, *, deffile: bytes | None = None, arch: str = "amd64",
              image_id: uuid.UUID | None = None, created: int = 1_600_000_000, modified: int = 1_600_000_100) -> None:
    """Write a SIF file holding squashfs as its primary system partition (and deffile, if given)."""
    arch_code = ARCH_CODES[arch] + b"\x00"
    objects: list[tuple[int, bytes, bytes]] = []  # (data type, data, extra)
    if deffile is not None:
        objects.append((DATA_DEFFILE, deffile, b""))
    objects.append((DATA_PARTITION, squashfs, struct.pack("<ii3s", FS_SQUASH, PART_PRIMSYS, arch_code)))
    total = len(objects) + 2  # two free slots, as a real file may have
    descriptors_offset = HEADER.size
    descriptors_size = total * DESCRIPTOR.size
    offset = -(-(descriptors_offset + descriptors_size) // DATA_ALIGN) * DATA_ALIGN
    data_offset = offset
    descriptors, body = b"", b""
    for number, (data_type, data, extra) in enumerate(objects, start=1):
        padded = -(-len(data) // DATA_ALIGN) * DATA_ALIGN
        descriptors += DESCRIPTOR.pack(data_type, True, number, 0xF0000001, 0, offset, len(data), padded,
                                       created, modified, 0, 0, b"", extra)
        body += data + b"\x00" * (padded - len(data))
        offset += padded
    descriptors += b"\x00" * DESCRIPTOR.size * (total - len(objects))
    header = HEADER.pack(b"#!/usr/bin/env run-singularity\n", MAGIC, VERSION, arch_code,
                         (image_id or uuid.UUID(int=0x1234)).bytes, created, modified,
                         total - len(objects), total, descriptors_offset, descriptors_size, data_offset, len(body))
    gap = b"\x00" * (data_offset - len(header) - len(descriptors))
    path.write_bytes(header + descriptors + gap + body)
