"""registries.conf (v2): per-registry `insecure` and `location` for the registries it names."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from labcheck.errors import UsageError

SYSTEM_FILE = Path("/etc/containers/registries.conf")


@dataclass(frozen=True)
class RegistryEntry:
    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False


def _files(explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    # podman honours CONTAINERS_REGISTRIES_CONF; labcheck does too (skopeo 1.9 does not).
    env = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    if env:
        return [Path(env)]
    # containers/image: a user's own registries.conf replaces the system one.
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user_file = Path(config_home) / "containers" / "registries.conf"
    main = user_file if os.geteuid() != 0 and user_file.exists() else SYSTEM_FILE
    files = [main]
    drop_in = main.with_suffix(".conf.d")
    if drop_in.is_dir():
        files.extend(sorted(drop_in.glob("*.conf")))
    return files


def load_entries(explicit: str | None = None) -> list[RegistryEntry]:
    entries: dict[str, RegistryEntry] = {}
    for path in _files(explicit):
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            if explicit:
                raise UsageError(f"registries configuration {path} does not exist") from None
            continue
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot parse registries configuration {path}: {exc}") from None
        for entry in _v2_entries(data) + _v1_entries(data):
            entries[entry.prefix] = entry
    return list(entries.values())


def _v2_entries(data: dict) -> list[RegistryEntry]:
    """`[[registry]]` tables; prefix defaults to location."""
    found = []
    for item in data.get("registry", []) or []:
        prefix = item.get("prefix") or item.get("location", "")
        if prefix:
            found.append(RegistryEntry(prefix=prefix, location=item.get("location") or prefix,
                                       insecure=bool(item.get("insecure", False)),
                                       blocked=bool(item.get("blocked", False))))
    return found


def _v1_entries(data: dict) -> list[RegistryEntry]:
    """The v1 format: `[registries.insecure] registries = [...]` and `[registries.block]`."""
    v1 = data.get("registries") or {}
    insecure = set((v1.get("insecure") or {}).get("registries") or [])
    blocked = set((v1.get("block") or {}).get("registries") or [])
    return [RegistryEntry(prefix=name, location=name, insecure=name in insecure, blocked=name in blocked)
            for name in sorted(insecure | blocked)]


def find_entry(name: str, explicit: str | None = None) -> RegistryEntry | None:
    """The entry with the longest prefix matching `host[/path]` (on a path boundary)."""
    best: RegistryEntry | None = None
    for entry in load_entries(explicit):
        prefix = entry.prefix
        if _matches(name, prefix) and (best is None or len(prefix) > len(best.prefix)):
            best = entry
    return best


def _matches(name: str, prefix: str) -> bool:
    if prefix.startswith("*."):
        return name.split("/")[0].endswith(prefix[1:])
    return name == prefix or name.startswith(prefix.rstrip("/") + "/")


def rewrite(name: str, entry: RegistryEntry | None) -> str:
    """Apply an entry's `location` to a `host/path` name."""
    if entry is None or entry.prefix.startswith("*.") or entry.location == entry.prefix:
        return name
    return entry.location + name[len(entry.prefix):]
