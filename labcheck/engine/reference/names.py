"""Docker-style image names as containers/image's docker/reference parses them, and Go's wordings."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from labcheck.engine.base.errors import InvalidReferenceError
from labcheck.engine.format.digest import digest_problem

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

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
TAG_RE = re.compile(_TAG, re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")


_GO_INT_RE = re.compile(r"[+-]?[0-9]+")
_GO_INT_MAX = 2**63 - 1

NAME_HINT = "Try {prefix}<registry>/<namespace>/<repository>:<tag>"
DIGEST_HINT = "a digest is sha256: followed by 64 lowercase hexadecimal digits"


def invalid(reason: str, hint: str | None = None) -> InvalidReferenceError:
    return InvalidReferenceError(reason, hint=hint, reason=reason)


def go_quote(text: str) -> str:
    """Go's %q, close enough for the texts references are made of."""
    return json.dumps(text, ensure_ascii=False)


def is_image_id(text: str) -> bool:
    return digest_problem("sha256:" + text) is None


def go_atoi(text: str) -> int:
    """strconv.Atoi, raising ValueError with Go's wording."""
    if not _GO_INT_RE.fullmatch(text):
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not -_GO_INT_MAX - 1 <= value <= _GO_INT_MAX:
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: value out of range")
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
        if not TAG_RE.fullmatch(tag):
            raise invalid("invalid tag format", hint=f"a tag matches {_TAG}")
        return replace(self, tag=tag)

    def without_tag_and_digest(self) -> DockerName:
        return DockerName(self.domain, self.path)

    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return tag + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def for_whole_name(text: str, err: InvalidReferenceError) -> InvalidReferenceError:
    """err, restated for the whole name the user gave (skopeo's `Invalid image name "…": reason`)."""
    return InvalidReferenceError(f"Invalid image name \"{text}\": {err.reason}", hint=err.hint,
                                 reference=text, reason=err.reason)


def parse_docker_name(text: str) -> DockerName:
    """Parse a docker-style name as ParseNormalizedNamed does; no `:latest` is added.

    `fedora` -> docker.io/library/fedora; `index.docker.io/x/y:1` -> docker.io/x/y:1.
    """
    try:
        return parse_normalized(text, prefix="")
    except InvalidReferenceError as err:
        raise for_whole_name(text, err) from None


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


def parse_normalized(text: str, *, prefix: str) -> DockerName:
    """ParseNormalizedNamed; prefix is the transport text a hint's suggestion starts with."""
    if _IDENTIFIER_RE.fullmatch(text):
        raise invalid(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings",
            hint="an image ID is not a repository name; use a name with a tag or digest",
        )
    domain, remainder = _split_docker_domain(text)
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        raise invalid(
            "invalid reference format: repository name must be lowercase",
            hint=f"repository names are lowercase: try {prefix}{_lowercase_suggestion(text)}",
        )
    return _parse_full_name(f"{domain}/{remainder}", prefix=prefix)


def _parse_full_name(text: str, *, prefix: str) -> DockerName:
    """reference.Parse on an already domain-qualified string."""
    match = _REFERENCE_RE.fullmatch(text)
    if match is None:
        if not text:
            raise invalid("repository name must have at least one component")
        if _REFERENCE_RE.fullmatch(text.lower()):
            raise invalid("repository name must be lowercase")
        raise invalid("invalid reference format", hint=NAME_HINT.format(prefix=prefix))
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise invalid(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest is not None:
        problem = digest_problem(digest)
        if problem:
            raise invalid(problem, hint=DIGEST_HINT)
    name_match = _NAME_RE.fullmatch(name)
    assert name_match is not None  # the reference regexp already matched this name
    return DockerName(name_match.group(1) or "", name_match.group(2), tag, digest)



def looks_like_docker_name(text: str) -> bool:
    try:
        parse_normalized(text, prefix="")
    except InvalidReferenceError:
        return False
    return True

