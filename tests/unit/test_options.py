"""One option table feeds the `labcheck` command and pytest: same destinations, same help, prefixed in pytest."""

from __future__ import annotations

import argparse

from labcheck.runner.options import OPTIONS, add_to_command, add_to_pytest, pytest_arguments


class PytestGroup:
    """pytest's option group has addoption; argparse's parser, add_argument: the same keywords."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser

    def addoption(self, *flags: str, **settings) -> None:
        self.parser.add_argument(*flags, **settings)


def pytest_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_to_pytest(PytestGroup(parser))
    return parser


def command_parser(*, for_class: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_to_command(parser, for_class=for_class)
    return parser


def test_pytest_options_carry_the_prefix_and_the_command_keeps_short_names() -> None:
    in_pytest = {flag for action in pytest_parser()._actions for flag in action.option_strings} - {"-h", "--help"}
    assert in_pytest and all(flag.startswith("--labcheck-") for flag in in_pytest), in_pytest
    assert "--labcheck-workers" in in_pytest and "--workers" not in in_pytest
    in_command = {flag for action in command_parser()._actions for flag in action.option_strings}
    assert {"--workers", "--inventory", "--limit", "--hosts", "--connect-timeout"} <= in_command
    assert not any(flag.startswith("--labcheck-") for flag in in_command)
    check = {flag for action in command_parser(for_class=False)._actions for flag in action.option_strings}
    assert "--inventory" not in check and "--profile" in check


def test_both_sides_share_destinations_and_help_texts() -> None:
    helps = {action.dest: action.help for action in pytest_parser()._actions if action.dest != "help"}
    for action in command_parser()._actions:
        if action.dest in helps:
            assert action.help == helps[action.dest], action.dest
    shared = set(helps) & {action.dest for action in command_parser()._actions}
    assert len(shared) == len([o for o in OPTIONS if o.command and not o.borrowed])


def test_the_command_hands_its_options_to_pytest_unchanged() -> None:
    args = command_parser().parse_args(["--workers", "4", "--var", "a=b", "--var", "c=d=e", "--accept-new-host-keys",
                                        "--json", "out.json", "--host-timeout", "2.5", "--hosts", "local://"])
    argv = pytest_arguments(args)
    assert "--labcheck-workers=4" in argv and not any(a.startswith("--hosts") for a in argv)
    parsed = pytest_parser().parse_args(argv)
    for option in OPTIONS:
        if option.command and not option.borrowed:
            assert getattr(parsed, option.dest) == getattr(args, option.dest), option.name
    assert pytest_arguments(command_parser().parse_args([])) == []  # defaults are not repeated
