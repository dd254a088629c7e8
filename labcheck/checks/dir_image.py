"""`dir_image`: a `dir:` layout on the host is a complete, uncorrupted image, hashed on the host itself."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from labcheck.checks.base import CheckContext, CheckResult, check
from labcheck.checks.digests import registry_problem, source_digests
from labcheck.checks.schema import CREDS, TRANSPORT_REF, params
from labcheck.checks.trace import Trace, last_line
from labcheck.engine.format.manifest import ImageManifest, ManifestList, parse_manifest
from labcheck.errors import LabcheckError

VERSION_RE = re.compile(r"^Directory Transport Version: 1\.[01]\n?$")
EXPECTED_VERSION = "Directory Transport Version: 1.1"
# Words `files` may use for files whose names depend on the image (the lab page's `ls` shows them).
FILE_ROLES = {"manifest": ("manifest.json",), "version": ("version",), "config": (), "layer": (), "layers": ()}

SCHEMA = params(
    {
        "path": {"type": "string", "minLength": 1, "description": "the directory, as in dir:PATH"},
        "files": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "uniqueItems": True,
            "description": "files the directory must hold: names, or the words manifest, version, "
                           "config, layer(s) for the files of those roles (other files are allowed)",
        },
        "same_digest_as": TRANSPORT_REF,
        "same_digest_creds": CREDS,
    },
    "path",
)


@dataclass(frozen=True)
class Blob:
    """A file the manifest(s) name: its digest, size (-1 unknown) and role in the image."""

    digest: str
    size: int
    role: str  # "config", "layer", or "image manifest" for an instance of a list

    @property
    def file_name(self) -> str:
        """skopeo's dir: file name: the hex digest for sha256 (instance manifests get .manifest.json)."""
        algorithm, _, hex_digest = self.digest.partition(":")
        name = hex_digest if algorithm == "sha256" else self.digest
        return f"{name}.manifest.json" if self.role.endswith("manifest") else name


@check("dir_image", SCHEMA)
def dir_image(
    ctx: CheckContext,
    path: str,
    files: list[str] | None = None,
    same_digest_as: str | None = None,
    same_digest_creds: str | None = None,
) -> CheckResult:
    """A dir: layout is a complete image: version, manifest.json, every blob present with its size and sha256."""
    trace = Trace(ctx, "dir_image", f"dir:{path} is a complete, uncorrupted image")
    expected = f"dir:{path} with {EXPECTED_VERSION}, manifest.json and every blob it names, intact"
    listing = trace.run("test -d %s && ls -1A -- %s", path, path)
    if listing.rc != 0:
        if listing.stderr.strip():
            return trace.failed(f"cannot list {path}: {last_line(listing.stderr)}", expected=expected)
        return trace.failed(f"the directory {path} does not exist: run the copy again", expected=expected,
                            actual="no such directory")
    names = set(listing.stdout.split())
    for needed in ("manifest.json", "version"):
        if needed not in names:
            return trace.failed(f"the directory {path} has no {needed}: run the copy again", expected=expected,
                                actual=f"files: {', '.join(sorted(names)) or '(none)'}")
    version = trace.run("cat -- %s", posixpath.join(path, "version"))
    if not VERSION_RE.match(version.stdout):
        return trace.failed(f"{path}/version does not say {EXPECTED_VERSION!r}: this is not a skopeo dir: layout",
                            expected=EXPECTED_VERSION, actual=version.stdout.strip()[:80])

    blobs, problem = _blobs(trace, path, names)
    if problem:
        return trace.failed(problem, expected=expected)
    missing = [b for b in blobs if b.file_name not in names]
    if missing:
        b = missing[0]
        return trace.failed(f"the {b.role} {b.digest} is missing from {path}: run the copy again",
                            expected=expected, actual=f"{len(missing)} of {len(blobs)} blobs missing")
    problem, manifest_digest = _verify_on_host(trace, path, blobs)
    if problem:
        return trace.failed(problem, expected=expected, actual="a damaged blob")
    if files is not None:
        problem = _check_files(path, files, names, blobs)
        if problem:
            return trace.failed(problem, expected=f"files: {', '.join(files)}",
                                actual=f"files: {', '.join(sorted(names))}")
    if same_digest_as:
        return _same_digest(trace, path, manifest_digest, same_digest_as, same_digest_creds)
    return trace.passed(expected=expected, actual=f"{len(blobs)} blobs intact, manifest {manifest_digest}")


def _blobs(trace: Trace, path: str, names: set[str]) -> tuple[list[Blob], str]:
    """Every blob the manifest.json (and, for a list, each instance's manifest) names; or a reason."""
    manifest = trace.run("cat -- %s", posixpath.join(path, "manifest.json"))
    try:
        top = parse_manifest(manifest.stdout.encode())
    except LabcheckError as exc:
        return [], f"{path}/manifest.json is not a valid manifest ({exc.message}): run the copy again"
    images: list[ImageManifest] = []
    blobs: list[Blob] = []
    if isinstance(top, ManifestList):
        for instance in top.instances:
            entry = Blob(instance.digest, instance.size, "image manifest")
            where = str(instance.platform) if instance.platform else instance.digest
            if entry.file_name not in names:
                return [], (f"{path} holds a list but not the manifest of its {where} image "
                            f"({entry.file_name}): copy again with --all")
            raw = trace.run("cat -- %s", posixpath.join(path, entry.file_name))
            try:
                single = parse_manifest(raw.stdout.encode(), instance.media_type)
            except LabcheckError as exc:
                return [], f"{path}/{entry.file_name} is not a valid manifest ({exc.message}): run the copy again"
            if not isinstance(single, ImageManifest):
                return [], f"{path}/{entry.file_name} is a list inside a list, which skopeo never writes"
            blobs.append(entry)
            images.append(single)
    else:
        images.append(top)
    seen = {b.digest for b in blobs}
    for image in images:
        named = ([Blob(image.config.digest, image.config.size, "config")] if image.config else []) + [
            Blob(layer.digest, layer.size, "layer") for layer in image.layers
        ]
        for blob in named:
            if blob.digest not in seen:
                seen.add(blob.digest)
                blobs.append(blob)
    return blobs, ""


HASHES_FOLLOW = "--- sha256 ---"


def _verify_on_host(trace: Trace, path: str, blobs: list[Blob]) -> tuple[str, str]:
    """Sizes (stat) and sha256 (sha256sum) of every blob, computed on the host in one command;
    (reason, manifest digest)."""
    files = [b.file_name for b in blobs]
    names = " ".join(["%s"] * len(files))
    both = trace.run(f"cd -- %s && stat -L -c '%%s %%n' -- {names} && echo '{HASHES_FOLLOW}' && "
                     f"sha256sum -- manifest.json {names}", path, *files, *files)
    sizes, _, hashes = both.stdout.partition(f"{HASHES_FOLLOW}\n")
    size_of = {name: size for size, name in (line.split(" ", 1) for line in sizes.splitlines() if " " in line)}
    for blob in blobs:
        actual = size_of.get(blob.file_name)
        if actual is None:
            return f"cannot read the {blob.role} {blob.digest} in {path}: {last_line(both.stderr)}", ""
        if blob.size >= 0 and int(actual) != blob.size:
            return (f"the {blob.role} {blob.digest} in {path} has {actual} bytes, but the manifest says "
                    f"{blob.size}: run the copy again"), ""
    sums = {name.lstrip("*"): digest for digest, name in
            (line.split(None, 1) for line in hashes.splitlines() if line.strip())}
    for blob in blobs:
        actual = sums.get(blob.file_name)
        if actual is None:
            return f"cannot hash the {blob.role} {blob.digest} in {path}: {last_line(both.stderr)}", ""
        if blob.digest.startswith("sha256:") and f"sha256:{actual}" != blob.digest:
            trace.output = f"{actual}  {blob.file_name}"
            return (f"the {blob.role} {blob.digest} in {path} is corrupted: its content hashes to "
                    f"sha256:{actual}. Run the copy again"), ""
    return "", f"sha256:{sums.get('manifest.json', '')}"


def _check_files(path: str, files: list[str], names: set[str], blobs: list[Blob]) -> str:
    """Whether the directory holds `files` (role words expanded to the blobs' file names)."""
    wanted: set[str] = set()
    for entry in files:
        if entry in ("config", "layer", "layers"):
            role = "config" if entry == "config" else "layer"
            wanted |= {b.file_name for b in blobs if b.role == role}
        else:
            wanted |= set(FILE_ROLES.get(entry, (entry,)))
    missing = sorted(wanted - names)
    return f"{path} has no {', '.join(missing)}: run the copy again" if missing else ""


def _same_digest(trace: Trace, path: str, digest: str, ref: str, creds: str | None) -> CheckResult:
    try:
        source = source_digests(trace, ref, creds)
    except LabcheckError as exc:
        return trace.failed(registry_problem(exc, ref, creds), expected=f"the image of {ref}")
    if not source.accepts([digest]):
        return trace.failed(source.mismatch(f"dir:{path}", digest), expected=source.expected(), actual=digest)
    return trace.passed(expected=source.expected(), actual=digest)
