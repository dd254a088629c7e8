"""The transports: one registered object per skopeo transport name (containers/image's ImageTransport).

Each transport module defines `TRANSPORT`, whose `open_source`/`open_destination` take that
transport's reference type (reference/refs.py). Modules are imported when first used, so a
command pays only for the transports it touches.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from labcheck.engine.base.errors import UnsupportedError
from labcheck.engine.base.interfaces import ImageDestination, ImageSource
from labcheck.engine.base.options import SideOptions
from labcheck.engine.reference.refs import ImageReference

_MODULES: dict[str, str] = {
    "docker": "labcheck.engine.transports.registry",
    "dir": "labcheck.engine.transports.dir",
    "oci": "labcheck.engine.transports.oci",
    "docker-archive": "labcheck.engine.transports.dockersave.archive",
    "oci-archive": "labcheck.engine.transports.oci_archive",
    "docker-daemon": "labcheck.engine.transports.dockersave.daemon",
    "containers-storage": "labcheck.engine.transports.containers_storage.transport",
    "sif": "labcheck.engine.transports.sif",
    "tarball": "labcheck.engine.transports.tarball",
}
NAMES: tuple[str, ...] = tuple(_MODULES)


class Transport(Protocol):
    """What a transport is: a name, and sources and destinations it opens for its references."""

    name: str

    def open_source(self, ref: Any, options: SideOptions | None = None) -> ImageSource: ...

    def open_destination(self, ref: Any, options: SideOptions | None = None) -> ImageDestination: ...


def get_transport(name: str) -> Transport:
    """The transport registered as `name`; UnsupportedError when there is none."""
    module_name = _MODULES.get(name)
    if module_name is None:
        raise UnsupportedError(f"transport {name} is not supported")
    transport: Transport = importlib.import_module(module_name).TRANSPORT
    return transport


def open_source(ref: ImageReference, options: SideOptions | None = None) -> ImageSource:
    """A source for ref, opened by its transport; the caller closes it."""
    return get_transport(ref.transport).open_source(ref, options or SideOptions())


def open_destination(ref: ImageReference, options: SideOptions | None = None) -> ImageDestination:
    """A destination for ref, opened by its transport; nothing is visible before its commit()."""
    return get_transport(ref.transport).open_destination(ref, options or SideOptions())
