"""The table of transports: skopeo's transport name -> the module that implements it.

Each module exposes `open_source(ref, opts) -> ImageSource` and
`open_destination(ref, opts) -> ImageDestination`; modules are imported lazily.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from labcheck.engine.base.errors import UnsupportedError

TRANSPORT_MODULES: dict[str, str] = {
    "docker": "labcheck.engine.transports.registry",
    "dir": "labcheck.engine.transports.dir",
    "oci": "labcheck.engine.transports.oci",
    "docker-archive": "labcheck.engine.transports.dockersave.archive",
    "oci-archive": "labcheck.engine.transports.oci_archive",
    "docker-daemon": "labcheck.engine.transports.dockersave.daemon",
    "containers-storage": "labcheck.engine.transports.containers_storage.transport",
}


def transport_module(name: str) -> ModuleType:
    """The module implementing transport `name`; UnsupportedError when there is none yet."""
    module_name = TRANSPORT_MODULES.get(name)
    if module_name is None:
        raise UnsupportedError(f"transport {name} is not supported yet")
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise UnsupportedError(
            f"transport {name} is not supported yet", hint="use the real skopeo for this transport for now"
        ) from None
