"""Targets from an Ansible inventory (INI or YAML), read directly: no ansible-core needed.

Read per host: ansible_host, ansible_port, ansible_user, ansible_ssh_private_key_file (or
ansible_private_key_file), ansible_connection=local; `labcheck_var_NAME` and `labcheck_env_NAME`
become the host's scenario var NAME and env NAME. Group vars and children are honoured; groups
become --limit groups. Dynamic inventories, vaults and host patterns (web[01:10]) are not.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import yaml

from labcheck.errors import UsageError, read_named_file
from labcheck.hosts.inventory import Inventory
from labcheck.hosts.targets import Target


class _Tree:
    """Groups with their hosts, vars and children, as Ansible's inventory model has them."""

    def __init__(self) -> None:
        self.hosts: dict[str, dict[str, Any]] = {}  # host → its own vars, in file order
        self.group_hosts: dict[str, list[str]] = {}
        self.group_vars: dict[str, dict[str, Any]] = {}
        self.children: dict[str, list[str]] = {}

    def add_host(self, group: str, host: str, host_vars: dict[str, Any]) -> None:
        self.hosts.setdefault(host, {}).update(host_vars)
        self.group_hosts.setdefault(group, [])
        if host not in self.group_hosts[group]:
            self.group_hosts[group].append(host)

    def members(self, group: str, seen: frozenset[str] = frozenset()) -> list[str]:
        if group in seen:
            return []
        hosts = list(self.group_hosts.get(group, []))
        for child in self.children.get(group, []):
            hosts += self.members(child, seen | {group})
        return list(dict.fromkeys(hosts))

    def ancestors(self, group: str) -> list[str]:
        """group's parents, outermost first (their vars are overridden by nearer groups)."""
        parents = [g for g, kids in self.children.items() if group in kids]
        result: list[str] = []
        for parent in parents:
            result += [*self.ancestors(parent), parent]
        return list(dict.fromkeys(result))


def load_ansible_inventory(path: str | Path) -> Inventory:
    path = Path(path)
    text = read_named_file(path, "the Ansible inventory")
    tree = _Tree()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and all(isinstance(v, (dict, type(None))) for v in data.values()):
        for group, body in data.items():
            _parse_yaml_group(str(group), body or {}, tree, path)
    else:
        _parse_ini(text, tree, path)
    groups = {g: tree.members(g) for g in {*tree.group_hosts, *tree.children} if g != "all"}
    targets = []
    for host, own in tree.hosts.items():
        host_groups = [g for g in groups if host in groups[g]]
        merged: dict[str, Any] = dict(tree.group_vars.get("all", {}))
        ordered: list[str] = []
        for group in host_groups:
            ordered += [*tree.ancestors(group), group]
        for group in dict.fromkeys(ordered):
            merged.update(tree.group_vars.get(group, {}))
        merged.update(own)
        targets.append(_target(host, merged, path.parent, tuple(host_groups)))
    return Inventory(targets, {g: members for g, members in groups.items() if members})


def _parse_ini(text: str, tree: _Tree, path: Path) -> None:
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            name = line.strip("[]").strip()
            section, _, kind = name.partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise UsageError(f"{path}:{number}: unknown section kind ':{kind}'")
            continue
        if kind == "children":
            tree.children.setdefault(section, []).append(line.split()[0])
        elif kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise UsageError(f"{path}:{number}: expected NAME=VALUE under [{section}:vars]")
            tree.group_vars.setdefault(section, {})[key.strip()] = _value(value.strip())
        else:
            words = shlex.split(line, comments=True)
            host_vars = {}
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if not sep:
                    raise UsageError(f"{path}:{number}: expected NAME=VALUE after the host name, got {word!r}")
                host_vars[key] = _value(value)
            tree.add_host(section, words[0], host_vars)


def _parse_yaml_group(group: str, body: dict[str, Any], tree: _Tree, path: Path) -> None:
    if not isinstance(body, dict):
        raise UsageError(f"{path}: group {group} must be a mapping (hosts:, vars:, children:)")
    tree.group_hosts.setdefault(group, [])
    for host, host_vars in (body.get("hosts") or {}).items():
        tree.add_host(group, str(host), dict(host_vars or {}))
    tree.group_vars.setdefault(group, {}).update(body.get("vars") or {})
    for child, child_body in (body.get("children") or {}).items():
        tree.children.setdefault(group, []).append(str(child))
        _parse_yaml_group(str(child), child_body or {}, tree, path)


def _value(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text


def _target(host: str, hv: dict[str, Any], base: Path, groups: tuple[str, ...]) -> Target:
    identity = hv.get("ansible_ssh_private_key_file") or hv.get("ansible_private_key_file")
    if identity:
        identity = os.path.expanduser(str(identity))
        identity = identity if os.path.isabs(identity) else str(base / identity)
    port = hv.get("ansible_port") or hv.get("ansible_ssh_port")
    local = hv.get("ansible_connection") == "local"
    return Target(
        name=host, backend="local" if local else "ssh", hostname=str(hv.get("ansible_host") or host),
        port=int(port) if port else None, user=str(hv["ansible_user"]) if hv.get("ansible_user") else None,
        identity_file=identity, groups=groups,
        vars={k.removeprefix("labcheck_var_"): v for k, v in hv.items() if k.startswith("labcheck_var_")},
        env={k.removeprefix("labcheck_env_"): str(v) for k, v in hv.items() if k.startswith("labcheck_env_")},
    )
