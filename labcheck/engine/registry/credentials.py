"""Registry credentials: explicit creds and auth files in containers' search order (containers/image pkg/docker/config)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labcheck.engine.base.errors import UsageError
from labcheck.engine.base.options import Credentials, SideOptions

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")


def auth_file_candidates(opts: SideOptions) -> list[Path]:
    """containers/image's search order (skopeo 1.9): --authfile or $REGISTRY_AUTH_FILE, else the
    runtime auth.json; then $XDG_CONFIG_HOME/containers/auth.json, Docker's config.json, ~/.dockercfg."""
    home = Path(os.path.expanduser("~"))
    explicit = opts.authfile or os.environ.get("REGISTRY_AUTH_FILE")
    candidates = [Path(explicit) if explicit else _runtime_auth_file()]
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    candidates.append(Path(config_home) / "containers" / "auth.json")
    docker_config = os.environ.get("DOCKER_CONFIG")
    candidates.append(Path(docker_config) / "config.json" if docker_config else home / ".docker" / "config.json")
    candidates.append(home / ".dockercfg")
    return candidates


def _runtime_auth_file() -> Path:
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return Path(runtime_dir) / "containers" / "auth.json"
    return Path("/run/containers") / str(os.getuid()) / "auth.json"


def lookup_keys(registry: str, repository: str) -> list[str]:
    """Most specific key first: registry/ns/repo, registry/ns, registry."""
    parts = repository.split("/") if repository else []
    keys = [f"{registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)]
    keys.append(registry)
    return keys


def normalise_key(key: str) -> str:
    """Auth files may name a registry by URL (`https://index.docker.io/v1/`): that means the host.
    Keys without a scheme are compared exactly (they may name a namespace or repository)."""
    if re.match(r"^https?://", key):
        key = re.sub(r"^https?://", "", key).split("/", 1)[0]
    key = key.rstrip("/")
    return DOCKER_HUB if key in DOCKER_HUB_ALIASES else key


def _decode_entry(entry: dict, source: Path) -> Credentials | None:
    encoded = entry.get("auth")
    if not encoded:
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise UsageError(f"invalid auth entry in {source}: not base64 'user:password'") from None
    if not sep:
        raise UsageError(f"invalid auth entry in {source}: missing ':' between user and password")
    return Credentials(user, password)


@dataclass(frozen=True)
class AuthFile:
    """What one auth file says: entries by key, credential helpers per registry, a default store."""

    entries: dict[str, dict]  # by exact key, then by normalised key (exact keys win)
    helpers: dict[str, str]  # credHelpers: registry -> helper (docker-credential-HELPER)
    store: str | None  # credsStore: the helper for registries without an entry


def _read_auth_file(path: Path) -> AuthFile | None:
    """The auth file at path; None when it does not exist."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read auth file {path}: {exc.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise UsageError(f"cannot read auth file {path}: not a JSON object")
    # auth.json and config.json keep entries under "auths"; the legacy ~/.dockercfg at the top.
    entries = data["auths"] if isinstance(data.get("auths"), dict) else data
    by_key: dict[str, dict] = {}
    for key, value in entries.items():
        if isinstance(value, dict):
            by_key.setdefault(key, value)
    for key, value in entries.items():
        if isinstance(value, dict):
            by_key.setdefault(normalise_key(key), value)
    raw_helpers = data.get("credHelpers")
    helpers: dict[str, Any] = raw_helpers if isinstance(raw_helpers, dict) else {}
    store = data.get("credsStore") if isinstance(data.get("credsStore"), str) and data.get("credsStore") else None
    return AuthFile(by_key, {normalise_key(k): v for k, v in helpers.items() if isinstance(v, str)}, store)


def helper_credentials(helper: str, registry: str, opts: SideOptions) -> Credentials | None:
    """Credentials from `docker-credential-HELPER get` for registry; None when it has none.
    Its output holds the secret: it is never shown, not even in errors."""
    program = f"docker-credential-{helper}"
    env = {**os.environ, **opts.tool_env} if opts.tool_env else None
    try:
        proc = subprocess.run([program, "get"], input=registry, capture_output=True, text=True, timeout=60, env=env)
    except FileNotFoundError:
        raise UsageError(f'getting credentials for {registry}: exec: "{program}": executable file not found in $PATH',
                         hint=f"install {program}, or remove the helper from the auth file") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"getting credentials for {registry}: {program} did not answer within 60 s") from None
    if proc.returncode != 0:
        if "credentials not found" in (proc.stdout + proc.stderr).lower():
            return None
        raise UsageError(f"getting credentials for {registry}: {program} get exited with status {proc.returncode}")
    try:
        answer = json.loads(proc.stdout)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"getting credentials for {registry}: {program} answered something other than "
                         "its JSON {Username, Secret}") from None
    if not isinstance(username, str) or not isinstance(secret, str) or username == "<token>":
        return None  # an identity token (OAuth), which registries here do not take
    return Credentials(username, secret)


def credentials_for(registry: str, repository: str, opts: SideOptions) -> Credentials | None:
    """The credentials skopeo would use for registry/repository, or None for anonymous access.

    Per auth file, in the search order: its credHelpers entry for the registry (which decides, as in
    containers/image), its auths entries, then its credsStore (docker's default helper; skopeo
    1.9.3 itself ignores credsStore)."""
    if opts.no_creds:
        return None
    if opts.creds is not None:
        return opts.creds
    host = normalise_key(registry)
    keys = lookup_keys(host, repository)
    for path in auth_file_candidates(opts):
        auth = _read_auth_file(path)
        if auth is None:
            continue
        if host in auth.helpers:
            return helper_credentials(auth.helpers[host], host, opts)
        for key in keys:
            if key in auth.entries:
                creds = _decode_entry(auth.entries[key], path)
                if creds is not None:
                    return creds
        if auth.store is not None:
            creds = helper_credentials(auth.store, host, opts)
            if creds is not None:
                return creds
    return None
