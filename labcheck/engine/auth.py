"""Registry credentials: explicit creds, auth files in containers' search order, and challenges."""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from labcheck.engine.errors import UsageError
from labcheck.engine.options import Credentials, SideOptions

DOCKER_HUB_LEGACY_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io")


def auth_file_candidates(opts: SideOptions) -> list[Path]:
    """--authfile, else $REGISTRY_AUTH_FILE, else containers' default search order."""
    explicit = opts.authfile or os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return [Path(explicit)]
    home = Path(os.path.expanduser("~"))
    candidates: list[Path] = []
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        candidates.append(Path(runtime_dir) / "containers" / "auth.json")
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    candidates.append(Path(config_home) / "containers" / "auth.json")
    docker_config = os.environ.get("DOCKER_CONFIG")
    candidates.append(Path(docker_config) / "config.json" if docker_config else home / ".docker" / "config.json")
    candidates.append(home / ".dockercfg")
    return candidates


def _lookup_keys(registry: str, repository: str) -> list[str]:
    """Most specific key first: registry/ns/repo, registry/ns, registry (+ Docker Hub's legacy keys)."""
    parts = repository.split("/") if repository else []
    keys = [f"{registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)]
    keys.append(registry)
    if registry == "docker.io":
        keys.extend(DOCKER_HUB_LEGACY_KEYS)
    return keys


def _normalise_key(key: str) -> str:
    """Auth files may hold URLs (`https://host/v1/`); containers/image compares host[/path]."""
    key = re.sub(r"^https?://", "", key)
    return key.rstrip("/").removesuffix("/v1").removesuffix("/v2")


def _decode_entry(entry: dict, source: Path) -> Credentials | None:
    encoded = entry.get("auth")
    if not encoded:
        return None
    try:
        user, sep, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        raise UsageError(f"invalid auth entry in {source}: not base64 'user:password'") from None
    if not sep:
        raise UsageError(f"invalid auth entry in {source}: missing ':' between user and password")
    return Credentials(user, password)


def credentials_for(registry: str, repository: str, opts: SideOptions) -> Credentials | None:
    """The credentials skopeo would use for registry/repository, or None for anonymous access."""
    if opts.no_creds:
        return None
    if opts.creds is not None:
        return opts.creds
    keys = _lookup_keys(registry, repository)
    for path in auth_file_candidates(opts):
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read auth file {path}: {exc.__class__.__name__}") from None
        entries = data.get("auths", data) if isinstance(data, dict) else {}
        by_key = {_normalise_key(k): v for k, v in entries.items() if isinstance(v, dict)}
        for key in keys:
            if key in by_key:
                creds = _decode_entry(by_key[key], path)
                if creds is not None:
                    return creds
    return None


@dataclass(frozen=True)
class Challenge:
    """One parsed WWW-Authenticate challenge."""

    scheme: str  # lower-case: "basic" or "bearer"
    params: dict[str, str]


_PARAM = re.compile(r'([A-Za-z0-9_\-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate header into challenges (scheme + params)."""
    challenges: list[Challenge] = []
    # A new challenge starts with a bare token followed by a space (e.g. `Bearer realm=...`).
    for match in re.finditer(r'(?:^|,)\s*([A-Za-z]+)(?:\s+|$)((?:[^,"]|"(?:[^"\\]|\\.)*"|,\s*[A-Za-z0-9_\-]+\s*=)*)', header):
        rest = match.group(2) or ""
        params = {
            m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).replace('\\"', '"')
            for m in _PARAM.finditer(rest)
        }
        challenges.append(Challenge(match.group(1).lower(), params))
    return challenges
