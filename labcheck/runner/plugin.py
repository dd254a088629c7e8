"""labcheck's pytest plugin (entry point `pytest11`), loaded into every pytest session of an environment
where labcheck is installed — so it is light and changes nothing until labcheck is in play.

It collects a YAML file only when the file is a labcheck scenario by a rule the user controls:
named on the command line, matched by the `labcheck_scenarios` ini globs (default `*.labcheck.yaml`,
`*.labcheck.yml`), or carrying the top-level key `labcheck:`. The first scenario collected, or any
labcheck option given, activates the rest (runner/session.py: the run-ahead executor, the report
plugin, log redaction); until then nothing heavy is imported and no global state is touched.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from labcheck.runner.options import add_to_pytest, given

if TYPE_CHECKING:
    from labcheck.labenv.world import LabWorld

SUFFIXES = (".yaml", ".yml")
DEFAULT_PATTERNS = ["*.labcheck.yaml", "*.labcheck.yml"]
# A top-level `labcheck:` key (column 0 in block YAML): the file says it is a scenario.
MARKER = re.compile(rb"^labcheck[ \t]*:", re.MULTILINE)
MARKER_SEARCH_BYTES = 64 * 1024

ACTIVE_KEY = pytest.StashKey[bool]()
NAMED_KEY = pytest.StashKey[frozenset[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_to_pytest(parser.getgroup("labcheck", "labcheck scenarios"))
    parser.addini("labcheck_scenarios", type="linelist", default=DEFAULT_PATTERNS,
                  help="globs of the YAML files that are labcheck scenarios, relative to the rootdir "
                  "(a pattern without '/' matches the file name); files named on the command line "
                  "and files with a top-level 'labcheck:' key are scenarios too")


XDIST_REFUSED = ("labcheck scenarios do not run under pytest-xdist (-n): their steps run per host in "
                 "labcheck's own threads, one connection per host; use --labcheck-workers N instead")


def pytest_configure(config: pytest.Config) -> None:
    if given(config.option) or any(_is_named_scenario(config, arg) for arg in config.args):
        activate(config)


def activate(config: pytest.Config) -> None:
    """Start labcheck's machinery for this session, once: labcheck items or options are in play."""
    if config.stash.get(ACTIVE_KEY, False):
        return
    if _distributed(config):
        raise pytest.UsageError(XDIST_REFUSED)
    config.stash[ACTIVE_KEY] = True
    from labcheck.runner import session

    session.start(config)


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix not in SUFFIXES or not is_scenario_file(parent.config, file_path):
        return None
    activate(parent.config)
    from labcheck.runner.items import ScenarioFile

    return ScenarioFile.from_parent(parent, path=file_path)


def _distributed(config: pytest.Config) -> bool:
    """pytest-xdist is distributing this session (its controller), or this is one of its workers."""
    return hasattr(config, "workerinput") or bool(getattr(config.option, "numprocesses", None)) \
        or bool(getattr(config.option, "tx", None))


def _is_named_scenario(config: pytest.Config, arg: str) -> bool:
    path = config.invocation_params.dir / arg.split("::")[0]
    return path.suffix in SUFFIXES and path.is_file()


def is_scenario_file(config: pytest.Config, path: Path) -> bool:
    """Named on the command line, matched by a labcheck_scenarios glob, or marked `labcheck:` inside."""
    if path.resolve() in _named(config):
        return True
    try:
        relative = path.resolve().relative_to(config.rootpath.resolve()).as_posix()
    except ValueError:
        relative = None
    for pattern in config.getini("labcheck_scenarios"):
        if "/" not in pattern and fnmatch.fnmatch(path.name, pattern):
            return True
        if relative is not None and fnmatch.fnmatch(relative, pattern):
            return True
    return _has_marker(path)


def _named(config: pytest.Config) -> frozenset[Path]:
    if NAMED_KEY not in config.stash:
        base = config.invocation_params.dir
        config.stash[NAMED_KEY] = frozenset((base / arg.split("::")[0]).resolve() for arg in config.args)
    return config.stash[NAMED_KEY]


def _has_marker(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            head = file.read(MARKER_SEARCH_BYTES)
    except OSError:
        return False
    return MARKER.search(head) is not None


@pytest.fixture(scope="session")
def lab_world() -> Iterator[LabWorld]:
    """A running offline lab world of the test session's own, torn down at the end.

    LABCHECK_TEST_STATE_DIR reuses (and keeps running) a lab world in that directory instead.
    """
    from labcheck.labenv.world import LabWorld  # here: a session that never asks for it never imports it

    reuse = os.environ.get("LABCHECK_TEST_STATE_DIR")
    if reuse:
        state_dir = Path(reuse)
    else:
        # Not under pytest's 0700 base directory: tests' student users must reach the CA bundle,
        # registries.conf and the Docker socket, and changing the modes of pytest's shared
        # directory would race with any other pytest run on the machine.
        state_dir = Path(tempfile.mkdtemp(prefix="labcheck-lab-"))
        state_dir.chmod(0o711)
    world = LabWorld(state_dir)
    world.up()
    yield world
    if not reuse:
        world.down()
        shutil.rmtree(state_dir, ignore_errors=True)
