"""Image names the way podman and docker normalise them: `fedora` is docker.io/library/fedora:latest."""

from __future__ import annotations

from labcheck.engine.reference.names import parse_docker_name
from labcheck.errors import LabcheckError


def normalise(name: str) -> str:
    """The full name podman stores for a name a student types; unparseable names come back unchanged.

    >>> normalise("fedora")
    'docker.io/library/fedora:latest'
    >>> normalise("registry.fedoraproject.org/fedora")
    'registry.fedoraproject.org/fedora:latest'
    >>> normalise("localhost/my:1")
    'localhost/my:1'
    """
    try:
        parsed = parse_docker_name(name)
    except LabcheckError:
        return name
    return str(parsed.with_default_tag())


def same_name(a: str, b: str) -> bool:
    """Whether two names mean the same image once normalised (docker's `fedora:latest` is podman's full name).

    >>> same_name("fedora:latest", "docker.io/library/fedora")
    True
    >>> same_name("fedora:39", "fedora")
    False
    """
    return normalise(a) == normalise(b)


def bare_id(image_id: str) -> str:
    """An image ID without docker's `sha256:` prefix, as podman prints it.

    >>> bare_id("sha256:550ea6f8")
    '550ea6f8'
    """
    return image_id.removeprefix("sha256:")
