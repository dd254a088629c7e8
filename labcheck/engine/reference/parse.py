"""Parse `transport:reference` strings exactly as skopeo 1.9 (containers/image v5's alltransports) does."""

from __future__ import annotations

import difflib
from typing import Callable, Union

from labcheck.engine.base.errors import InvalidReferenceError
from labcheck.engine.format.digest import digest_problem
from labcheck.engine.reference.names import (
    NAME_HINT,
    for_whole_name,
    go_atoi,
    go_quote,
    invalid,
    is_image_id,
    looks_like_docker_name,
    parse_normalized,
)
from labcheck.engine.reference.refs import (
    DaemonReference,
    DirReference,
    DockerArchiveReference,
    DockerReference,
    ImageReference,
    OCIArchiveReference,
    OCIReference,
    TARBALL_SEPARATOR,
    SifReference,
    StorageReference,
    StoreSpec,
    TarballReference,
)

ImageIDLookup = Callable[[str], Union[str, None]]
"""Given an image ID prefix or name, the full ID of the image the store finds for it, else None."""

_STORE_SPEC_HINT = "a store specification is [driver@graphroot+runroot:options], with absolute paths"


# --- parsers, one per transport -----------------------------------------------------------------


def _parse_docker(rest: str) -> DockerReference:
    if not rest.startswith("//"):
        hint = _docker_slashes_hint(rest)
        raise invalid(f"docker: image reference {rest} does not start with //", hint=hint)
    named = parse_normalized(rest[2:], prefix="docker://")
    return DockerReference(named.with_default_tag())


def _docker_slashes_hint(rest: str) -> str:
    candidate = rest.lstrip("/")
    if candidate and looks_like_docker_name(candidate):
        return f"did you mean docker://{candidate}?"
    return NAME_HINT.format(prefix="docker://")



def _parse_dir(rest: str) -> DirReference:
    return DirReference(rest)


def _parse_source_index(text: str, *, shown: str) -> int:
    """The N of `@N`; shown is how the error message quotes the whole index."""
    try:
        index = go_atoi(text)
    except ValueError as err:
        raise invalid(f"Invalid source index {shown}: {err}", hint="a source index is @0, @1, …") from None
    if index < 0:
        raise invalid(f"Invalid source index @{index}: must not be negative")
    return index


def _parse_oci(rest: str) -> OCIReference:
    path, _, image = rest.partition(":")
    if image.startswith("@"):
        digits = image[1:]
        try:
            index = go_atoi(digits)
        except ValueError as err:
            raise invalid(f"Invalid source index @{digits}: not an integer: {err}") from None
        if index < 0:
            raise invalid(f"Invalid source index @{index}: must not be negative")
        return OCIReference(path, source_index=index)
    return OCIReference(path, image)


def _parse_oci_archive(rest: str) -> OCIArchiveReference:
    path, _, image = rest.partition(":")
    return OCIArchiveReference(path, image)


def _parse_docker_archive(rest: str) -> DockerArchiveReference:
    if not rest:
        raise invalid(
            f"docker-archive reference {rest} isn't of the form <path>[:<reference>]",
            hint="Try docker-archive:/path/to/image.tar[:name:tag]",
        )
    path, colon, tail = rest.partition(":")
    if not colon:
        return DockerArchiveReference(path)
    if tail.startswith("@"):
        return DockerArchiveReference(path, source_index=_parse_source_index(tail[1:], shown=tail))
    try:
        named = parse_normalized(tail, prefix=f"docker-archive:{path}:")
    except InvalidReferenceError as err:
        raise invalid(f"docker-archive parsing reference: {err.reason}", hint=err.hint) from None
    return DockerArchiveReference(path, named.with_default_tag())


def _parse_daemon(rest: str) -> DaemonReference:
    if digest_problem(rest) is None:
        if not rest.startswith("sha256:"):
            raise invalid(f"Invalid docker-daemon: reference {rest}: only digest algorithm sha256 accepted")
        return DaemonReference(image_id=rest)
    named = parse_normalized(rest, prefix="docker-daemon:")
    if named.familiar_name == "sha256":
        raise invalid(
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
        raise invalid("invalid reference", hint=_STORE_SPEC_HINT + "; the ] is missing")
    spec, remainder = rest[1:close], rest[close + 1 :]
    driver = ""
    if "@" in spec:
        driver, spec = spec.split("@", 1)
        if not driver or not spec:
            raise invalid("invalid reference", hint=_STORE_SPEC_HINT)
    elif not spec:
        raise invalid("invalid reference", hint=_STORE_SPEC_HINT)
    options: tuple[str, ...] = ()
    if ":" in spec:
        spec, option_text = spec.split(":", 1)
        options = tuple(option_text.split(","))
    graph_root, _, run_root = spec.partition("+")
    for path in (graph_root, run_root):
        if path and not path.startswith("/"):
            raise invalid("path name is not absolute", hint=_STORE_SPEC_HINT)
    return StoreSpec(driver, graph_root, run_root, options), remainder


def _parse_storage(rest: str, lookup_image_id: ImageIDLookup | None = None) -> StorageReference:
    store, ref = _parse_store_spec(rest)
    if not ref:
        raise invalid('"" is an empty reference: invalid reference', hint="name an image, e.g. fedora")
    if ref.startswith("["):
        close = ref.find("]")
        if close < 1:
            raise invalid(f"store specifier in {go_quote(ref)} did not end: invalid reference")
        ref = ref[close + 1 :]
    ref, image_id = _split_storage_id(ref, lookup_image_id)
    named = None
    if ref:
        try:
            named = parse_normalized(ref, prefix="containers-storage:").with_default_tag()
        except InvalidReferenceError as err:
            raise invalid(f"parsing named reference {go_quote(ref)}: {err.reason}", hint=err.hint) from None
    return StorageReference(store, named, image_id)


def _split_storage_id(ref: str, lookup_image_id: ImageIDLookup | None) -> tuple[str, str | None]:
    """Take a trailing `@ID` off (a trailing `@digest` stays part of the name)."""
    at = ref.rfind("@")
    if at != -1:
        possible = ref[at + 1 :]
        if not possible:
            raise invalid(f"empty trailing digest or ID in {go_quote(ref)}: invalid reference")
        if digest_problem(possible) is not None:
            image_id = possible if is_image_id(possible) else _lookup_id(possible, lookup_image_id)
            if image_id is None:
                raise invalid(
                    f"{go_quote(possible)} does not look like an image ID or digest: invalid reference",
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


def _parse_sif(rest: str) -> SifReference:
    return SifReference(rest)


def _parse_tarball(rest: str) -> TarballReference:
    return TarballReference(tuple(rest.split(TARBALL_SEPARATOR)))


_PARSERS: dict[str, Callable[[str], ImageReference]] = {
    "docker": _parse_docker,
    "dir": _parse_dir,
    "oci": _parse_oci,
    "docker-archive": _parse_docker_archive,
    "oci-archive": _parse_oci_archive,
    "docker-daemon": _parse_daemon,
    "containers-storage": _parse_storage,
    "sif": _parse_sif,
    "tarball": _parse_tarball,
}

TRANSPORTS: tuple[str, ...] = tuple(_PARSERS)
# Registered in skopeo 1.9.3 too, but not something labcheck implements.
SKOPEO_ONLY_TRANSPORTS: tuple[str, ...] = ("ostree",)


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
        raise for_whole_name(text, err) from None


def _missing_transport_hint(text: str) -> str:
    if text and looks_like_docker_name(text):
        return f"did you mean docker://{text}? The transports are: {', '.join(TRANSPORTS)}"
    return f"start with a transport: {', '.join(TRANSPORTS)}"


def _unknown_transport(text: str, transport: str) -> InvalidReferenceError:
    if transport in SKOPEO_ONLY_TRANSPORTS:
        reason = f"transport {go_quote(transport)} is not supported by labcheck"
        return InvalidReferenceError(
            f"Invalid image name \"{text}\": {reason}",
            hint=f"labcheck supports: {', '.join(TRANSPORTS)}",
            reference=text,
            reason=reason,
        )
    return InvalidReferenceError(
        f"Invalid image name \"{text}\", unknown transport {go_quote(transport)}",
        hint=_unknown_transport_hint(text, transport),
        reference=text,
    )


def _unknown_transport_hint(text: str, transport: str) -> str:
    if looks_like_docker_name(text):
        return f"did you mean docker://{text}?"
    close = difflib.get_close_matches(transport, TRANSPORTS, n=1)
    if close:
        return f"did you mean {close[0]}:? The transports are: {', '.join(TRANSPORTS)}"
    return f"the transports are: {', '.join(TRANSPORTS)}"
