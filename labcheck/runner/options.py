"""The run options, declared once: the `labcheck` command's argparse and pytest's parser both read this table.

The command keeps short names (`--workers`); as pytest options they carry the plugin's prefix
(`--labcheck-workers`), so they never collide with another plugin's. Both store to the same
attribute (`labcheck_workers`), so code that reads options takes either namespace. `--hosts`,
`--ssh-config` and `--ansible-inventory` are pytest-testinfra's own options: labcheck reads them
and, as pytest options, leaves their declaration to testinfra.

Light on purpose: the pytest plugin imports it in every session.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Iterable

from labcheck.argtypes import positive_int, positive_seconds

MODES = ("run", "verify", "check", "reset")
DRIVERS = ("native", "skopeo")
PREFIX = "labcheck"


@dataclass(frozen=True)
class RunOption:
    """One option of a run: its command-line name, help and argparse settings."""

    name: str  # the command's option without dashes, e.g. "workers"
    help: str
    settings: dict[str, Any] = field(default_factory=dict)  # type, choices, default, action, metavar
    for_class: bool = False  # about a class of hosts: not offered by `labcheck check` (this machine only)
    borrowed: bool = False  # pytest-testinfra declares it as a pytest option
    command: bool = True  # the command has it (the mode is the command's subcommand instead)

    @property
    def dest(self) -> str:
        attribute = self.name.replace("-", "_")
        return attribute if self.borrowed else f"{PREFIX}_{attribute}"

    @property
    def pytest_flag(self) -> str:
        return f"--{self.name}" if self.borrowed else f"--{PREFIX}-{self.name}"

    @property
    def default(self) -> Any:
        return self.settings.get("default", False if self.settings.get("action") == "store_true" else None)


OPTIONS = (
    RunOption("mode", "run: do then verify each step; verify: checks only (default); check: verify for a "
              "student; reset: undo every step", {"choices": MODES, "default": "verify"}, command=False),
    RunOption("profile", "the scenario profile (default: the scenario's default_profile)", {"metavar": "NAME"}),
    RunOption("var", "override a scenario variable (repeatable)",
              {"action": "append", "default": [], "metavar": "NAME=VALUE"}),
    RunOption("secrets-file", "KEY=VALUE lines that secret('KEY') reads besides the environment", {"metavar": "FILE"}),
    RunOption("driver", "who carries out copy/inspect: native (labcheck's engine, on this machine) or skopeo "
              "(the real skopeo on the host); default: native locally, skopeo on remote hosts", {"choices": DRIVERS}),
    RunOption("json", "write the results as JSON (docs/results-schema.json), secrets redacted: the input of "
              "`labcheck report`", {"metavar": "FILE"}),
    RunOption("hosts", "comma-separated host URIs: local://, ssh://[user@]host[:port], paramiko://…"
              "?ssh_identity_file=KEY (default: local://); ssh:// and paramiko:// both mean labcheck's one "
              "paramiko connection per host", {"metavar": "URIS"}, for_class=True, borrowed=True),
    RunOption("inventory", "a class inventory (docs/class.md): students to check", {"metavar": "FILE"}, for_class=True),
    RunOption("ansible-inventory", "an Ansible inventory (INI or YAML)", {"metavar": "FILE"}, for_class=True,
              borrowed=True),
    RunOption("limit", "only these inventory groups or host names (comma-separated)", {"metavar": "GROUPS"},
              for_class=True),
    RunOption("ssh-config", "an OpenSSH client config (default ~/.ssh/config)", {"metavar": "FILE"}, for_class=True,
              borrowed=True),
    RunOption("known-hosts", "host keys to verify against (default ~/.ssh/known_hosts)", {"metavar": "FILE"},
              for_class=True),
    RunOption("accept-new-host-keys", "trust a host's key on first use and record it in the known_hosts file "
              "(a changed key is still refused)", {"action": "store_true"}, for_class=True),
    RunOption("workers", "hosts checked at once (default: one per host, up to 32)",
              {"type": positive_int, "metavar": "N"}, for_class=True),
    RunOption("host-timeout", "a host not done within this time is marked unreachable (default 300)",
              {"type": positive_seconds, "default": 300.0, "metavar": "SECONDS"}, for_class=True),
    RunOption("check-timeout", "a command on a host silent this long makes the host unreachable (default 60)",
              {"type": positive_seconds, "default": 60.0, "metavar": "SECONDS"}, for_class=True),
    RunOption("connect-timeout", "SSH connect, banner and authentication timeout (default 10)",
              {"type": positive_seconds, "default": 10.0, "metavar": "SECONDS"}, for_class=True),
)
BY_NAME = {option.name: option for option in OPTIONS}


def add_to_pytest(group: Any) -> None:
    """Declare labcheck's own options (prefixed) in pytest's option group."""
    for option in OPTIONS:
        if not option.borrowed:
            group.addoption(option.pytest_flag, dest=option.dest, help=option.help, **option.settings)


def add_to_command(parser: argparse.ArgumentParser, *, for_class: bool) -> None:
    """Declare the options a `labcheck run|verify|check|reset` command takes, by their short names."""
    group = parser.add_argument_group("a class of hosts") if for_class else None
    for option in OPTIONS:
        if not option.command or (option.for_class and not for_class):
            continue
        target = group if option.for_class and group is not None else parser
        target.add_argument(f"--{option.name}", dest=option.dest, help=option.help, **option.settings)


def pytest_arguments(namespace: argparse.Namespace, names: Iterable[str] | None = None) -> list[str]:
    """The pytest arguments that carry the command's labcheck options (those not at their default).
    Borrowed options are left out: the command hands pytest its hosts and connections itself."""
    wanted = set(names) if names is not None else None
    argv: list[str] = []
    for option in OPTIONS:
        if option.borrowed or (wanted is not None and option.name not in wanted):
            continue
        value = getattr(namespace, option.dest, option.default)
        if value is None or value == option.default:
            continue
        if option.settings.get("action") == "store_true":
            argv.append(option.pytest_flag)
        elif option.settings.get("action") == "append":
            argv += [f"{option.pytest_flag}={item}" for item in value]
        else:
            argv.append(f"{option.pytest_flag}={value}")
    return argv


def given(namespace: Any) -> bool:
    """Whether any of labcheck's own options differs from its default in a parsed namespace."""
    return any(getattr(namespace, option.dest, option.default) not in (option.default, None)
               for option in OPTIONS if not option.borrowed)
