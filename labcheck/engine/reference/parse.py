"""Parse `transport:reference` strings exactly as skopeo 1.9 (containers/image v5) does."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, replace
from typing import Callable, ClassVar, Union

from labcheck.engine.base.errors import InvalidReferenceError
from labcheck.engine.transports import TRANSPORT_MODULES

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

TRANSPORTS: tuple[str, ...] = tuple(TRANSPORT_MODULES)
# Registered in skopeo 1.9.3 too, but not something labcheck implements.
SKOPEO_ONLY_TRANSPORTS: tuple[str, ...] = ("sif", "tarball", "ostree")

ImageIDLookup = Callable[[str], Union[str, None]]
"""Given an image ID prefix or name, the full ID of the image the store finds for it, else None."""

# --- the grammar of docker/reference/regexp.go -------------------------------------------------
# Docker's separator is `[._]|__|[-]*`; an empty separator only joins two alphanumeric runs, so
# `-+` accepts the same names while keeping Python's backtracking linear.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_NAME_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH = rf"{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*"
_TAG = r"\w[\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(rf"((?:{_DOMAIN}/)?{_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_NAME_RE = re.compile(rf"(?:({_DOMAIN})/)?({_PATH})", re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")

# go-digest: the algorithms skopeo links in, and the loose form that tells "unsupported" from "malformed".
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")

# oci/internal/oci_util.go: what an image name inside an OCI layout may look like.
_OCI_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_OCI_IMAGE_RE = re.compile(rf"{_OCI_COMPONENT}(?:/{_OCI_COMPONENT})*")

_GO_INT_RE = re.compile(r"[+-]?[0-9]+")
_GO_INT_MAX = 2**63 - 1

_NAME_HINT = "Try {prefix}<registry>/<namespace>/<repository>:<tag>"
_DIGEST_HINT = "a digest is sha256: followed by 64 lowercase hexadecimal digits"
_STORE_SPEC_HINT = "a store specification is [driver@graphroot+runroot:options], with absolute paths"


def _invalid(reason: str, hint: str | None = None) -> InvalidReferenceError:
    return InvalidReferenceError(reason, hint=hint, reason=reason)


def _go_quote(text: str) -> str:
    """Go's %q, close enough for the texts references are made of."""
    return json.dumps(text, ensure_ascii=False)


def _digest_problem(digest: str) -> str | None:
    """go-digest's verdict on an `algorithm:hex` string: None when valid, else its error text."""
    algorithm, colon, encoded = digest.partition(":")
    if not algorithm or not colon or not encoded:
        return "invalid checksum digest format"
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        if _GO_DIGEST_RE.fullmatch(digest):
            return "unsupported digest algorithm"
        return "invalid checksum digest format"
    if len(encoded) != length:
        return "invalid checksum digest length"
    if not _LOWER_HEX_RE.fullmatch(encoded):
        return "invalid checksum digest format"
    return None


def _is_image_id(text: str) -> bool:
    return _digest_problem("sha256:" + text) is None


def _go_atoi(text: str) -> int:
    """strconv.Atoi, raising ValueError with Go's wording."""
    if not _GO_INT_RE.fullmatch(text):
        raise ValueError(f"strconv.Atoi: parsing {_go_quote(text)}: invalid syntax")
    value = int(text)
    if not -_GO_INT_MAX - 1 <= value <= _GO_INT_MAX:
        raise ValueError(f"strconv.Atoi: parsing {_go_quote(text)}: value out of range")
    return value


# --- named references ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerName:
    """A normalised docker-style name: docker.io/library/fedora:latest and friends.

    str() is the full form containers/image's Named.String() gives; `familiar` is the short
    form docker and skopeo print for docker:// and docker-daemon: references.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository without tag or digest, as skopeo inspect prints it in "Name"."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def familiar_name(self) -> str:
        """The name with the docker.io/ and docker.io/library/ prefixes dropped."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        first, _, rest = self.path.partition("/")
        if first == OFFICIAL_REPO_PREFIX and rest and "/" not in rest:
            return rest
        return self.path

    @property
    def familiar(self) -> str:
        """The familiar name with its tag and digest: `fedora:latest`."""
        return self.familiar_name + self._suffix()

    @property
    def is_name_only(self) -> bool:
        return self.tag is None and self.digest is None

    @property
    def tag_or_digest(self) -> str | None:
        """What a registry's manifest URL ends with: the digest when there is one, else the tag."""
        return self.digest or self.tag

    def with_default_tag(self) -> DockerName:
        """`:latest` added to a bare name (reference.TagNameOnly)."""
        return replace(self, tag=DEFAULT_TAG) if self.is_name_only else self

    def with_tag(self, tag: str) -> DockerName:
        if not _TAG_RE.fullmatch(tag):
            raise _invalid("invalid tag format", hint=f"a tag matches {_TAG}")
        return replace(self, tag=tag)

    def without_tag_and_digest(self) -> DockerName:
        return DockerName(self.domain, self.path)

    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return tag + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def _for_whole_name(text: str, err: InvalidReferenceError) -> InvalidReferenceError:
    """err, restated for the whole name the user gave (skopeo's `Invalid image name "…": reason`)."""
    return InvalidReferenceError(f"Invalid image name \"{text}\": {err.reason}", hint=err.hint,
                                 reference=text, reason=err.reason)


def parse_docker_name(text: str) -> DockerName:
    """Parse a docker-style name as ParseNormalizedNamed does; no `:latest` is added.

    `fedora` -> docker.io/library/fedora; `index.docker.io/x/y:1` -> docker.io/x/y:1.
    """
    try:
        return _parse_normalized(text, prefix="")
    except InvalidReferenceError as err:
        raise _for_whole_name(text, err) from None


def _split_docker_domain(text: str) -> tuple[str, str]:
    first, slash, rest = text.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        domain, remainder = DEFAULT_DOMAIN, text
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"{OFFICIAL_REPO_PREFIX}/{remainder}"
    return domain, remainder


def _lowercase_suggestion(text: str) -> str:
    first, slash, rest = text.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return f"{first}/{_lowercase_suggestion_remote(rest)}"
    return _lowercase_suggestion_remote(text)


def _lowercase_suggestion_remote(remainder: str) -> str:
    remote, colon, tail = remainder.partition(":")
    return remote.lower() + colon + tail


def _parse_normalized(text: str, *, prefix: str) -> DockerName:
    """ParseNormalizedNamed; prefix is the transport text a hint's suggestion starts with."""
    if _IDENTIFIER_RE.fullmatch(text):
        raise _invalid(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings",
            hint="an image ID is not a repository name; use a name with a tag or digest",
        )
    domain, remainder = _split_docker_domain(text)
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        raise _invalid(
            "invalid reference format: repository name must be lowercase",
            hint=f"repository names are lowercase: try {prefix}{_lowercase_suggestion(text)}",
        )
    return _parse_full_name(f"{domain}/{remainder}", prefix=prefix)


def _parse_full_name(text: str, *, prefix: str) -> DockerName:
    """reference.Parse on an already domain-qualified string."""
    match = _REFERENCE_RE.fullmatch(text)
    if match is None:
        if not text:
            raise _invalid("repository name must have at least one component")
        if _REFERENCE_RE.fullmatch(text.lower()):
            raise _invalid("repository name must be lowercase")
        raise _invalid("invalid reference format", hint=_NAME_HINT.format(prefix=prefix))
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise _invalid(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest is not None:
        problem = _digest_problem(digest)
        if problem:
            raise _invalid(problem, hint=_DIGEST_HINT)
    name_match = _NAME_RE.fullmatch(name)
    assert name_match is not None  # the reference regexp already matched this name
    return DockerName(name_match.group(1) or "", name_match.group(2), tag, digest)


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
            raise _invalid(f"Docker reference {self.named.familiar} has neither a tag nor a digest")
        if self.named.tag and self.named.digest:
            raise _invalid(
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


def _check_oci_path_and_image(path: str, image: str) -> None:
    if ":" in path:
        raise _invalid(f"Invalid OCI reference: path {path} contains a colon")
    if image and not _OCI_IMAGE_RE.fullmatch(image):
        raise _invalid(
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
        _check_oci_path_and_image(self.path, self.image)
        if self.source_index is not None and self.source_index < 0:
            raise _invalid(f"Invalid oci: layout reference: index @{self.source_index} must not be negative")
        if self.source_index is not None and self.image:
            raise _invalid(
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
        _check_oci_path_and_image(self.path, self.image)

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
            quoted = _go_quote(self.path)
            raise _invalid(f"Invalid docker-archive: reference: colon in path {quoted} is not supported")
        if self.named is not None and self.source_index is not None:
            raise _invalid("Invalid docker-archive: reference: cannot use both a tag and a source index")
        if self.named is not None:
            self._check_named(self.path, self.named)
        if self.source_index is not None and self.source_index < 0:
            index = self.source_index
            raise _invalid(f"Invalid docker-archive: reference: index @{index} must not be negative")

    @staticmethod
    def _check_named(path: str, named: DockerName) -> None:
        hint = f"name the image with a tag: docker-archive:{path}:{named.name}:{DEFAULT_TAG}"
        if not named.tag:
            raise _invalid(f"reference does not include a tag: {named}", hint=hint)
        if named.digest:
            raise _invalid(f"docker-archive doesn't support digest references: {named}", hint=hint)

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
            raise _invalid(
                "docker-daemon: reference must not have an image ID and a reference string "
                "specified at the same time"
            )
        if self.named is None and not self.image_id:
            raise _invalid("docker-daemon: reference needs an image ID or a name")
        if self.named is not None:
            self._check_named(self.named)

    @staticmethod
    def _check_named(named: DockerName) -> None:
        if named.is_name_only:
            raise _invalid(
                f"docker-daemon: reference {named.familiar} has neither a tag nor a digest",
                hint=f"docker-daemon: adds no :latest; try docker-daemon:{named.familiar}:{DEFAULT_TAG}",
            )
        if named.tag and named.digest:
            raise _invalid("docker-daemon: references with both a tag and digest are currently not supported")

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
            raise _invalid("invalid reference", hint="name an image (fedora:latest) or an ID (@<64 hex>)")
        if self.named is not None and self.named.is_name_only:
            raise _invalid(f"reference {self.named} has neither a tag nor a digest: invalid reference")
        if self.image_id and not _is_image_id(self.image_id):
            problem = _digest_problem("sha256:" + self.image_id)
            raise _invalid(f"invalid ID value {_go_quote(self.image_id)}: {problem}: invalid reference")

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


ImageReference = Union[
    DockerReference,
    DirReference,
    OCIReference,
    OCIArchiveReference,
    DockerArchiveReference,
    DaemonReference,
    StorageReference,
]


# --- parsers, one per transport -----------------------------------------------------------------


def _parse_docker(rest: str) -> DockerReference:
    if not rest.startswith("//"):
        hint = _docker_slashes_hint(rest)
        raise _invalid(f"docker: image reference {rest} does not start with //", hint=hint)
    named = _parse_normalized(rest[2:], prefix="docker://")
    return DockerReference(named.with_default_tag())


def _docker_slashes_hint(rest: str) -> str:
    candidate = rest.lstrip("/")
    if candidate and _looks_like_docker_name(candidate):
        return f"did you mean docker://{candidate}?"
    return _NAME_HINT.format(prefix="docker://")


def _looks_like_docker_name(text: str) -> bool:
    try:
        _parse_normalized(text, prefix="")
    except InvalidReferenceError:
        return False
    return True


def _parse_dir(rest: str) -> DirReference:
    return DirReference(rest)


def _parse_source_index(text: str, *, shown: str) -> int:
    """The N of `@N`; shown is how the error message quotes the whole index."""
    try:
        index = _go_atoi(text)
    except ValueError as err:
        raise _invalid(f"Invalid source index {shown}: {err}", hint="a source index is @0, @1, …") from None
    if index < 0:
        raise _invalid(f"Invalid source index @{index}: must not be negative")
    return index


def _parse_oci(rest: str) -> OCIReference:
    path, _, image = rest.partition(":")
    if image.startswith("@"):
        digits = image[1:]
        try:
            index = _go_atoi(digits)
        except ValueError as err:
            raise _invalid(f"Invalid source index @{digits}: not an integer: {err}") from None
        if index < 0:
            raise _invalid(f"Invalid source index @{index}: must not be negative")
        return OCIReference(path, source_index=index)
    return OCIReference(path, image)


def _parse_oci_archive(rest: str) -> OCIArchiveReference:
    path, _, image = rest.partition(":")
    return OCIArchiveReference(path, image)


def _parse_docker_archive(rest: str) -> DockerArchiveReference:
    if not rest:
        raise _invalid(
            f"docker-archive reference {rest} isn't of the form <path>[:<reference>]",
            hint="Try docker-archive:/path/to/image.tar[:name:tag]",
        )
    path, colon, tail = rest.partition(":")
    if not colon:
        return DockerArchiveReference(path)
    if tail.startswith("@"):
        return DockerArchiveReference(path, source_index=_parse_source_index(tail[1:], shown=tail))
    try:
        named = _parse_normalized(tail, prefix=f"docker-archive:{path}:")
    except InvalidReferenceError as err:
        raise _invalid(f"docker-archive parsing reference: {err.reason}", hint=err.hint) from None
    return DockerArchiveReference(path, named.with_default_tag())


def _parse_daemon(rest: str) -> DaemonReference:
    if _digest_problem(rest) is None:
        if not rest.startswith("sha256:"):
            raise _invalid(f"Invalid docker-daemon: reference {rest}: only digest algorithm sha256 accepted")
        return DaemonReference(image_id=rest)
    named = _parse_normalized(rest, prefix="docker-daemon:")
    if named.familiar_name == "sha256":
        raise _invalid(
            f"Invalid docker-daemon: reference {rest}: "
            "The sha256 repository name is reserved for (non-shortened) digest references",
            hint="an image ID is sha256: followed by all 64 hexadecimal digits",
        )
    return DaemonReference(named=named)


def _parse_store_spec(rest: str) -> tuple[StoreSpec | None, str]:
    """Split off a leading `[driver@graphroot+runroot:options]`, checked as storage_transport.go does."""
    if not rest.startswith("["):
        return None, rest
    close = rest.find("]")
    if close < 1:
        raise _invalid("invalid reference", hint=_STORE_SPEC_HINT + "; the ] is missing")
    spec, remainder = rest[1:close], rest[close + 1 :]
    driver = ""
    if "@" in spec:
        driver, spec = spec.split("@", 1)
        if not driver or not spec:
            raise _invalid("invalid reference", hint=_STORE_SPEC_HINT)
    elif not spec:
        raise _invalid("invalid reference", hint=_STORE_SPEC_HINT)
    options: tuple[str, ...] = ()
    if ":" in spec:
        spec, option_text = spec.split(":", 1)
        options = tuple(option_text.split(","))
    graph_root, _, run_root = spec.partition("+")
    for path in (graph_root, run_root):
        if path and not path.startswith("/"):
            raise _invalid("path name is not absolute", hint=_STORE_SPEC_HINT)
    return StoreSpec(driver, graph_root, run_root, options), remainder


def _parse_storage(rest: str, lookup_image_id: ImageIDLookup | None = None) -> StorageReference:
    store, ref = _parse_store_spec(rest)
    if not ref:
        raise _invalid('"" is an empty reference: invalid reference', hint="name an image, e.g. fedora")
    if ref.startswith("["):
        close = ref.find("]")
        if close < 1:
            raise _invalid(f"store specifier in {_go_quote(ref)} did not end: invalid reference")
        ref = ref[close + 1 :]
    ref, image_id = _split_storage_id(ref, lookup_image_id)
    named = None
    if ref:
        try:
            named = _parse_normalized(ref, prefix="containers-storage:").with_default_tag()
        except InvalidReferenceError as err:
            raise _invalid(f"parsing named reference {_go_quote(ref)}: {err.reason}", hint=err.hint) from None
    return StorageReference(store, named, image_id)


def _split_storage_id(ref: str, lookup_image_id: ImageIDLookup | None) -> tuple[str, str | None]:
    """Take a trailing `@ID` off (a trailing `@digest` stays part of the name)."""
    at = ref.rfind("@")
    if at != -1:
        possible = ref[at + 1 :]
        if not possible:
            raise _invalid(f"empty trailing digest or ID in {_go_quote(ref)}: invalid reference")
        if _digest_problem(possible) is not None:
            image_id = possible if _is_image_id(possible) else _lookup_id(possible, lookup_image_id)
            if image_id is None:
                raise _invalid(
                    f"{_go_quote(possible)} does not look like an image ID or digest: invalid reference",
                    hint="after @ comes a digest (sha256:<64 hex>) or an image ID (64 hex)",
                )
            return ref[:at], image_id
    # A bare string may be a short image ID; only the store can tell, so only a lookup decides.
    if not any(c in ref for c in "@:"):
        image_id = _lookup_id(ref, lookup_image_id)
        if image_id is not None:
            return "", image_id
    return ref, None


def _lookup_id(prefix: str, lookup_image_id: ImageIDLookup | None) -> str | None:
    if lookup_image_id is None or len(prefix) < 3:
        return None
    found = lookup_image_id(prefix)
    return found if found and found.startswith(prefix) else None


_PARSERS: dict[str, Callable[[str], ImageReference]] = {
    "docker": _parse_docker,
    "dir": _parse_dir,
    "oci": _parse_oci,
    "docker-archive": _parse_docker_archive,
    "oci-archive": _parse_oci_archive,
    "docker-daemon": _parse_daemon,
    "containers-storage": _parse_storage,
}


def parse_image_reference(text: str, *, lookup_image_id: ImageIDLookup | None = None) -> ImageReference:
    """Parse skopeo's `transport:reference` syntax into the transport's reference type.

    Pure: no file, store, daemon or network is touched. skopeo also resolves dir:/oci: paths
    (their parent must exist) and asks the store about short IDs; lookup_image_id stands in for
    the latter for containers-storage: references.
    """
    transport, colon, rest = text.partition(":")
    if not colon:
        raise InvalidReferenceError(
            f"Invalid image name \"{text}\", expected colon-separated transport:reference",
            hint=_missing_transport_hint(text),
            reference=text,
        )
    parser = _PARSERS.get(transport)
    if parser is None:
        raise _unknown_transport(text, transport)
    try:
        if transport == "containers-storage":
            return _parse_storage(rest, lookup_image_id)
        return parser(rest)
    except InvalidReferenceError as err:
        raise _for_whole_name(text, err) from None


def _missing_transport_hint(text: str) -> str:
    if text and _looks_like_docker_name(text):
        return f"did you mean docker://{text}? The transports are: {', '.join(TRANSPORTS)}"
    return f"start with a transport: {', '.join(TRANSPORTS)}"


def _unknown_transport(text: str, transport: str) -> InvalidReferenceError:
    if transport in SKOPEO_ONLY_TRANSPORTS:
        reason = f"transport {_go_quote(transport)} is not supported by labcheck"
        return InvalidReferenceError(
            f"Invalid image name \"{text}\": {reason}",
            hint=f"labcheck supports: {', '.join(TRANSPORTS)}",
            reference=text,
            reason=reason,
        )
    return InvalidReferenceError(
        f"Invalid image name \"{text}\", unknown transport {_go_quote(transport)}",
        hint=_unknown_transport_hint(text, transport),
        reference=text,
    )


def _unknown_transport_hint(text: str, transport: str) -> str:
    if _looks_like_docker_name(text):
        return f"did you mean docker://{text}?"
    close = difflib.get_close_matches(transport, TRANSPORTS, n=1)
    if close:
        return f"did you mean {close[0]}:? The transports are: {', '.join(TRANSPORTS)}"
    return f"the transports are: {', '.join(TRANSPORTS)}"
