"""Property-based tests of what reads hostile input: whatever the bytes, only labcheck's own errors
escape (a user sees one line), and nothing hangs (each example has a deadline).

A modest number of examples per target by default; `pytest -m properties --hypothesis-profile=deep`
runs many more (profiles in tests/conftest.py)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from labcheck.engine.transports.dockersave.reader import parse_manifest_json
from labcheck.engine.format.imageconfig import oci_config
from labcheck.engine.format.manifest import parse_manifest
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.engine.archive.extract import extract
from labcheck.engine.transports.dockersave.stream import scan_metadata
from labcheck.errors import LabcheckError
from labcheck.scenario.lint import lint_text
from labcheck.scenario.model import ScenarioError, bind, load_scenario

pytestmark = pytest.mark.properties

MANIFEST_TYPES = ["", "application/vnd.docker.distribution.manifest.v2+json",
                  "application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.list.v2+json",
                  "application/vnd.oci.image.index.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws", "text/plain"]

# JSON values, deep enough to take every branch of a parser that expects objects of objects.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
# Keys a manifest or config parser looks for, so that generated objects often look almost right.
MANIFEST_KEYS = ["schemaVersion", "mediaType", "config", "layers", "manifests", "digest", "size", "platform",
                 "architecture", "os", "variant", "urls", "annotations", "fsLayers", "blobSum", "history",
                 "v1Compatibility"]
CONFIG_KEYS = ["architecture", "os", "variant", "created", "author", "config", "rootfs", "history", "Env", "Cmd",
               "Entrypoint", "Labels", "ExposedPorts", "Volumes", "WorkingDir", "User", "StopSignal", "diff_ids",
               "type", "empty_layer", "created_by", "comment", "os.version", "os.features"]


def almost(keys: list[str]) -> st.SearchStrategy:
    return st.recursive(
        json_values,
        lambda children: st.dictionaries(st.sampled_from(keys), children, max_size=6) | st.lists(children, max_size=3),
        max_leaves=30,
    )


def only_our_errors(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except LabcheckError:
        pass


# --- scenario loader and linter ------------------------------------------------------------------------

SCENARIO_KEYS = ["id", "title", "steps", "vars", "env", "profiles", "default_profile", "verify", "do", "undo",
                 "hint", "requires", "retries", "timeout", "run", "copy", "command", "file", "src", "dst",
                 "stdout_matches", "path", "exit_status", "lab_env", "description"]
scenario_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from("ab{}%()[]._- :'\"\\\n"), max_size=20)
    | st.sampled_from(["{{ home }}", "{{ lab.__class__ }}", "{{ x", "([", "{% for %}", "a", "0600", "s1"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(SCENARIO_KEYS), children,
                                                                      max_size=5),
    max_leaves=30,
)


@given(st.text(max_size=400))
@example("id: a\ntitle: \x08\n")  # a control character: was a yaml ReaderError, exit 4
@example("a: !!value =\n")  # an unknown tag: was a yaml ConstructorError
def test_the_linter_takes_any_text(text: str) -> None:
    for problem in lint_text(text, "s.yaml"):
        assert problem.line >= 1 and problem.column >= 1 and problem.message


@given(scenario_values)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_loading_any_scenario_shaped_yaml_is_a_scenario_or_a_scenario_error(tmp_path_factory, data) -> None:
    path = tmp_path_factory.mktemp("s") / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        assert exc.problems
        return
    # A file that passes lint binds (templates rendered) or fails with a usage error, never a crash.
    only_our_errors(lambda: bind(scenario, environ={}).render(scenario.steps[0].hint))


# --- references, manifests, configs, archives ------------------------------------------------------------

TRANSPORTS = ["docker://", "dir:", "oci:", "docker-archive:", "oci-archive:", "docker-daemon:",
              "containers-storage:", "", "bogus:"]


@given(st.sampled_from(TRANSPORTS), st.text(max_size=80))
def test_any_reference_parses_or_is_an_invalid_reference(transport: str, rest: str) -> None:
    only_our_errors(parse_image_reference, transport + rest)


@given(st.sampled_from(TRANSPORTS), st.text(alphabet="abcdef0123456789:/@._-[]", max_size=80))
def test_reference_like_strings_parse_or_are_invalid(transport: str, rest: str) -> None:
    only_our_errors(parse_image_reference, transport + rest)


@given(almost(MANIFEST_KEYS), st.sampled_from(MANIFEST_TYPES))
@example({"manifests": True}, "")  # was a TypeError
@example({"manifests": [None]}, "application/vnd.oci.image.index.v1+json")
def test_any_manifest_json_parses_or_is_a_manifest_error(document, media_type: str) -> None:
    only_our_errors(parse_manifest, json.dumps(document).encode(), media_type)


@given(st.binary(max_size=200), st.sampled_from(MANIFEST_TYPES))
def test_any_manifest_bytes_parse_or_are_a_manifest_error(raw: bytes, media_type: str) -> None:
    only_our_errors(parse_manifest, raw, media_type)


@given(almost(CONFIG_KEYS))
def test_any_config_json_decodes_or_is_a_config_error(document) -> None:
    only_our_errors(oci_config, json.dumps(document).encode())


@given(st.binary(max_size=200))
def test_any_config_bytes_decode_or_are_a_config_error(raw: bytes) -> None:
    only_our_errors(oci_config, raw)


@given(almost(["Config", "RepoTags", "Layers", "config", "repotags", "layers"]))
@example([{"RepoTags": 1}])  # was a TypeError
def test_any_docker_archive_manifest_json_parses_or_is_an_archive_error(document) -> None:
    only_our_errors(parse_manifest_json, json.dumps(document).encode())


def _tar(members: list[tuple[str, str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                             "fifo": tarfile.FIFOTYPE}[kind]
                info.linkname = data.decode(errors="replace")
                tar.addfile(info)
    return buffer.getvalue()


member_names = st.sampled_from(["manifest.json", "repositories", "a", "a/b", "../up", "/abs", ".", "a/../../x",
                                "blobs/sha256/ab", "index.json", "oci-layout", "l.tar", "d/"])
tar_members = st.lists(st.tuples(member_names, st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo"]),
                                 st.binary(max_size=40) | st.sampled_from([b"../..", b"/etc", b"a", b"[]", b"{}"])),
                       max_size=6)


@st.composite
def damaged_tars(draw) -> bytes:
    """A tar of generated members, maybe gzipped, with maybe some bytes flipped or cut off."""
    data = _tar(draw(tar_members))
    if draw(st.booleans()):
        data = gzip.compress(data, mtime=0)
    for _ in range(draw(st.integers(0, 3))):
        if data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


@given(damaged_tars())
def test_any_archive_stream_scans_or_is_an_archive_error(data: bytes) -> None:
    only_our_errors(scan_metadata, io.BytesIO(data))


@given(damaged_tars())
@example(gzip.compress(b"x" * 1024, mtime=0)[:20])  # a cut-off gzip: was an EOFError
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_archive_extracts_inside_or_is_refused(tmp_path: Path, data: bytes) -> None:
    assume(data)
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    (work / "archive.tar").write_bytes(data)
    root = work / "root"
    root.mkdir()
    only_our_errors(extract, work / "archive.tar", root)
    for path in root.rglob("*"):  # nothing special, and nothing but links that resolve outside
        if not path.is_symlink():
            assert path.is_dir() or path.is_file()
            assert Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))
    assert {p.name for p in work.iterdir()} == {"archive.tar", "root"}
