"""Engine options from an environment mapping, read as skopeo reads its own environment.

A caller whose environment is not this process's (the lab world's, one host's) gives it here
instead of setting os.environ, which is one per process and would make concurrent calls take turns.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Mapping

from labcheck.engine.base.options import SideOptions

# Variables that have an option of their own: the option, when not given explicitly, takes the value.
AS_OPTIONS = {"SSL_CERT_FILE": "ca_file", "CONTAINERS_REGISTRIES_CONF": "registries_conf",
              "REGISTRY_AUTH_FILE": "authfile", "DOCKER_HOST": "daemon_host"}
# A variable naming a missing file is skipped, but an option naming one is an error.
NAMES_FILES = {"SSL_CERT_FILE", "CONTAINERS_REGISTRIES_CONF", "REGISTRY_AUTH_FILE"}
# Read only by the tools a transport runs (podman for containers-storage:), which get env as theirs.
TOOLS_ONLY = {"CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"}


def options_with_environment(options: SideOptions, env: Mapping[str, str]) -> SideOptions | None:
    """options completed from env (an explicit option wins, as it does over the environment), with
    env handed to the tools a transport runs; None when env holds something only os.environ can carry
    (another variable, or a variable naming a missing file): the caller must set os.environ then."""
    if set(env) - set(AS_OPTIONS) - TOOLS_ONLY:
        return None
    if any(not os.path.isfile(env[key]) for key in NAMES_FILES & set(env)):
        return None
    changes: dict[str, Any] = {name: env[key] for key, name in AS_OPTIONS.items()
                                  if key in env and getattr(options, name) is None}
    if env:
        changes["tool_env"] = {**(options.tool_env or {}), **env}
    return replace(options, **changes)
