"""A class inventory (class.yaml): students, how to reach each, their own vars and env, and groups.

    defaults: {user: student, identity_file: keys/class, vars: {...}, env: {...}}
    students:
      - {name: alice, host: 10.0.0.11, port: 22, user: alice, vars: {dest: "{{ lab.dest_registry }}/alice"}}
    groups:
      monday: [alice, bob]

A student's keys win over `defaults`; `vars` and `env` are merged key by key. Relative identity
files are relative to the inventory file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labcheck.errors import UsageError, read_named_file
from labcheck.hosts.targets import Target, unique_names
from labcheck.yamlload import YamlSyntaxError, load_yaml

HOST_KEYS = ("name", "host", "port", "user", "identity_file", "agent", "proxy_jump", "vars", "env", "groups")
DEFAULT_KEYS = tuple(k for k in HOST_KEYS if k not in ("name", "host", "groups"))
TOP_KEYS = ("defaults", "students", "groups")


@dataclass
class Inventory:
    targets: list[Target]
    groups: dict[str, list[str]] = field(default_factory=dict)  # group → member names, in file order

    def select(self, limit: str | None) -> list[Target]:
        """The targets a `--limit g1,alice` names (groups or host names), in inventory order."""
        if not limit:
            return list(self.targets)
        wanted: set[str] = set()
        names = {t.name for t in self.targets}
        for item in (part.strip() for part in limit.split(",")):
            if not item:
                continue
            if item in self.groups:
                wanted.update(self.groups[item])
            elif item in names:
                wanted.add(item)
            else:
                known = ", ".join(sorted(self.groups)) or "none"
                raise UsageError(f"--limit {item}: no such group or host in the inventory (groups: {known})")
        return [t for t in self.targets if t.name in wanted]


class InventoryError(UsageError):
    """A problem in an inventory file, with file:line."""


def load_inventory(path: str | Path) -> Inventory:
    """Read class.yaml; every problem is an InventoryError naming file:line."""
    path = Path(path)
    text = read_named_file(path, "the inventory")
    try:
        loaded = load_yaml(text)
    except YamlSyntaxError as exc:
        raise InventoryError(f"{path}:{exc.position.line}: {exc.message}") from None
    data = loaded.data

    def fail(where: tuple[str | int, ...], message: str, hint: str | None = None) -> InventoryError:
        return InventoryError(f"{path}:{loaded.position(where).line}: {message}", hint=hint)

    if not isinstance(data, dict) or not isinstance(data.get("students"), list):
        raise fail((), "an inventory is a mapping with a list under 'students'",
                   hint="students: [{name: alice, host: 10.0.0.11, user: alice}]")
    for key in data:
        if key not in TOP_KEYS:
            raise fail((key,), f"unknown key '{key}'", hint=f"known keys: {', '.join(TOP_KEYS)}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise fail(("defaults",), "'defaults' must be a mapping")
    for key in defaults:
        if key not in DEFAULT_KEYS:
            raise fail(("defaults", key), f"unknown key '{key}' in defaults", hint=f"known: {', '.join(DEFAULT_KEYS)}")

    base = path.parent
    targets: list[Target] = []
    member_groups: dict[str, list[str]] = {}
    for index, raw in enumerate(data["students"]):
        where = ("students", index)
        if not isinstance(raw, dict):
            raise fail(where, "each student is a mapping: {name: …, host: …}")
        for key in raw:
            if key not in HOST_KEYS:
                raise fail((*where, key), f"unknown key '{key}'", hint=f"known keys: {', '.join(HOST_KEYS)}")
        entry = {**defaults, **raw,
                 "vars": {**(defaults.get("vars") or {}), **(raw.get("vars") or {})},
                 "env": {**(defaults.get("env") or {}), **(raw.get("env") or {})}}
        if not entry.get("name") or not entry.get("host"):
            raise fail(where, "a student needs a name and a host")
        targets.append(_target(entry, base, lambda message, key=None: fail((*where, key) if key else where, message)))
        for group in raw.get("groups") or []:
            member_groups.setdefault(str(group), []).append(str(entry["name"]))
    unique_names_in_file(targets, fail)

    groups: dict[str, list[str]] = {}
    raw_groups = data.get("groups") or {}
    if not isinstance(raw_groups, dict):
        raise fail(("groups",), "'groups' maps a group name to a list of student names")
    names = {t.name for t in targets}
    for group, members in raw_groups.items():
        if not isinstance(members, list):
            raise fail(("groups", group), f"group '{group}' must be a list of student names")
        for member in members:
            if str(member) not in names:
                raise fail(("groups", group), f"group '{group}' names '{member}', who is not a student")
        groups[str(group)] = [str(m) for m in members]
    for group, members in member_groups.items():
        groups[group] = list(dict.fromkeys(groups.get(group, []) + members))
    in_groups = {name: tuple(g for g, members in groups.items() if name in members) for name in names}
    return Inventory([t.with_(groups=in_groups[t.name]) for t in targets], groups)


def unique_names_in_file(targets: list[Target], fail) -> None:
    try:
        unique_names(targets, "the inventory")
    except UsageError as exc:
        raise fail(("students",), exc.message) from None


def _target(entry: dict[str, Any], base: Path, fail) -> Target:
    port = entry.get("port")
    if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
        raise fail(f"port {port!r} is not a TCP port", "port")
    identity = entry.get("identity_file")
    if identity:
        identity = os.path.expanduser(str(identity))
        if not os.path.isabs(identity):
            identity = str(base / identity)
    for key in ("vars", "env"):
        if not isinstance(entry.get(key), dict):
            raise fail(f"'{key}' must be a mapping", key)
    return Target(
        name=str(entry["name"]), backend="local" if entry["host"] in ("local", "local://") else "ssh",
        hostname=str(entry["host"]), port=port, user=str(entry["user"]) if entry.get("user") else None,
        identity_file=identity, agent=bool(entry.get("agent", True)),
        proxy_jump=str(entry["proxy_jump"]) if entry.get("proxy_jump") else None,
        vars=dict(entry["vars"]), env={k: str(v) for k, v in entry["env"].items()},
    )
