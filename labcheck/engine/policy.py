"""The trust policy (policy.json) as skopeo applies it to a copy's source (containers/image signature/).

insecureAcceptAnything and reject are enforced per transport and scope; requirements that need
signatures verified (signedBy, sigstoreSigned) refuse the copy: the real skopeo checks those.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labcheck.engine.reference.names import DockerName
from labcheck.engine.reference.refs import (
    DaemonReference,
    DirReference,
    DockerReference,
    ImageReference,
    OCIArchiveReference,
    OCIReference,
    SifReference,
)
from labcheck.errors import LabcheckError, UsageError

SYSTEM_POLICY = Path("/etc/containers/policy.json")
ACCEPT = "insecureAcceptAnything"
REJECT = "reject"
SIGNATURE_TYPES = ("signedBy", "sigstoreSigned")
KNOWN_TYPES = (ACCEPT, REJECT, *SIGNATURE_TYPES)


class PolicyRejectedError(LabcheckError):
    """The policy does not allow the source image (skopeo: `Source image rejected: …`)."""


def default_policy_path() -> Path:
    """$HOME/.config/containers/policy.json when it exists, else /etc/containers/policy.json."""
    user = Path(os.path.expanduser("~")) / ".config" / "containers" / "policy.json"
    return user if user.exists() else SYSTEM_POLICY


@dataclass(frozen=True)
class Policy:
    """A parsed policy.json: the default requirements and those per transport and scope."""

    default: list[dict[str, Any]]
    transports: dict[str, dict[str, list[dict[str, Any]]]]

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Policy:
        """The policy at path (default: skopeo's search), or skopeo's `Error loading trust policy: …`."""
        path = Path(path) if path is not None else default_policy_path()
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise UsageError(f"Error loading trust policy: open {path}: no such file or directory",
                             hint="give a policy with --policy, or --insecure-policy to accept any image") from None
        except OSError as exc:
            raise UsageError(f"Error loading trust policy: open {path}: {exc.strerror}") from None
        try:
            return cls.parse(json.loads(text))
        except ValueError as exc:
            reason = exc.args[0] if isinstance(exc, _PolicyFormatError) else f"invalid JSON: {exc}"
            raise UsageError(f'Error loading trust policy: invalid policy in "{path}": {reason}') from None

    @classmethod
    def parse(cls, data: Any) -> Policy:
        if not isinstance(data, dict):
            raise _PolicyFormatError("the policy is not a JSON object")
        if "default" not in data:
            raise _PolicyFormatError("Default policy is missing")
        default = _requirements(data["default"])
        transports: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for name, scopes in (data.get("transports") or {}).items():
            if not isinstance(scopes, dict):
                raise _PolicyFormatError(f"Policy for transport {name} is not a JSON object")
            transports[name] = {scope: _requirements(reqs) for scope, reqs in scopes.items()}
        return cls(default, transports)

    def requirements_for(self, ref: ImageReference) -> list[dict[str, Any]]:
        """The most specific requirements for ref: its identity, its namespaces, the transport's
        default "", then the global default (containers/image's requirementsForImageRef)."""
        scopes = self.transports.get(ref.transport)
        if scopes:
            identity, namespaces = policy_scopes(ref)
            for scope in ([identity] if identity else []) + namespaces + [""]:
                if scope in scopes:
                    return scopes[scope]
        return self.default

    def check(self, ref: ImageReference) -> None:
        """Raise unless the policy lets ref be copied."""
        requirements = self.requirements_for(ref)
        if any(r["type"] == REJECT for r in requirements):
            raise PolicyRejectedError(f"Source image rejected: Running image {ref} is rejected by policy.",
                                      hint="the trust policy (policy.json) says reject for this image")
        signed = [r["type"] for r in requirements if r["type"] in SIGNATURE_TYPES]
        if signed:
            raise UsageError(
                f"Source image rejected: the trust policy requires {signed[0]} signatures for {ref}, "
                "which labcheck's engine cannot verify: run it with --driver skopeo (the real skopeo)",
            )


class _PolicyFormatError(ValueError):
    """A policy.json that parses as JSON but not as a policy (containers/image's wording)."""


def _requirements(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _PolicyFormatError("Policy requirements must be a list")
    if not value:
        raise _PolicyFormatError("Policy requirements must not be empty")
    for requirement in value:
        kind = requirement.get("type") if isinstance(requirement, dict) else None
        if kind not in KNOWN_TYPES:
            raise _PolicyFormatError(f'Unknown policy requirement type "{kind}"')
    return value


def policy_scopes(ref: ImageReference) -> tuple[str, list[str]]:
    """(identity, namespaces most specific first) of ref, as its transport in containers/image
    defines them; ("", []) where only the transport's "" scope applies (archives, storage)."""
    if isinstance(ref, DockerReference):
        return _docker_identity(ref.named), docker_namespaces(ref.named)
    if isinstance(ref, DaemonReference):
        if ref.named is None:
            return "", []
        return _docker_identity(ref.named), docker_namespaces(ref.named)
    if isinstance(ref, (DirReference, SifReference)):
        path = _resolved(ref.path)
        return path, _parent_dirs(path)
    if isinstance(ref, (OCIReference, OCIArchiveReference)):
        path = _resolved(ref.path)
        if ref.image:
            return f"{path}:{ref.image}", [path, *_parent_dirs(path)]
        return path, _parent_dirs(path)
    return "", []


def _docker_identity(named: DockerName) -> str:
    return str(named)


def docker_namespaces(named: DockerName) -> list[str]:
    """The repository, its parent namespaces up to the host, then `*.domain` wildcards."""
    out: list[str] = []
    name = named.name
    while True:
        out.append(name)
        if "/" not in name:
            break
        name = name.rsplit("/", 1)[0]
    host = name.split(":", 1)[0]
    while "." in host:
        host = host.split(".", 1)[1]
        out.append(f"*.{host}")
    return out


def _resolved(path: str) -> str:
    """An absolute path with symlinks resolved, as far as it exists (containers/image's explicitfilepath)."""
    absolute = Path(os.path.abspath(path))
    if absolute.exists():
        return str(absolute.resolve())
    return str(absolute.parent.resolve() / absolute.name)


def _parent_dirs(path: str) -> list[str]:
    out = []
    while True:
        parent = path.rsplit("/", 1)[0]
        if not parent or parent == path:
            break
        out.append(parent)
        path = parent
    return out
