"""The pure parts of the checks library: schemas, paths, names, platforms, digests, comparisons."""

from __future__ import annotations

import doctest
import importlib

import jsonschema
import pytest

from labcheck.checks import CHECKS
from labcheck.checks.base import CheckContext, PlatformDigest
from labcheck.checks.digests import SourceDigests
from labcheck.checks.dir_image import Blob, _check_files
from labcheck.checks.expectations import label_mismatches, matches
from labcheck.checks.jsonpath import PathError, lookup, split_path
from labcheck.checks.names import normalise, same_name
from labcheck.checks.platforms import go_platform, pick_instance

MODULES = ["base", "trace", "names", "jsonpath", "expectations", "platforms", "schema", "digests", "dir_image"]
LIST = "sha256:" + "1" * 64
AMD = PlatformDigest("sha256:" + "a" * 64, "linux/amd64")
ARM = PlatformDigest("sha256:" + "b" * 64, "linux/arm64/v8")


@pytest.mark.parametrize("module", MODULES)
def test_doctests(module: str) -> None:
    failures, _ = doctest.testmod(importlib.import_module(f"labcheck.checks.{module}"))
    assert failures == 0


def test_every_check_is_registered_with_a_strict_valid_schema() -> None:
    assert sorted(CHECKS) == ["command", "container", "dir_image", "docker_image", "file", "registry_image",
                              "storage_image"]
    for spec in CHECKS.values():
        jsonschema.Draft202012Validator.check_schema(spec.params_schema)
        assert spec.params_schema["additionalProperties"] is False
        assert spec.description


@pytest.mark.parametrize(
    ("check", "params"),
    [
        ("command", {"run": "skopeo inspect docker://r/fedora", "json": {"Labels.vendor": "Fedora Project"}}),
        ("command", {"run": "true", "stdout_contains": ["a", "b"], "exit_status": 0}),
        ("file", {"path": "/root/x", "mode": "0600", "owner": "root", "contains": "x"}),
        ("dir_image", {"path": "/root/fedora-skopeo", "files": ["manifest", "config", "layer", "version"],
                       "same_digest_as": "docker://registry.fedoraproject.org/fedora"}),
        ("storage_image", {"name": "fedora", "labels": {"version": 38}}),
        ("container", {"name": "meta-data-container", "running": True, "image": "registry.fedoraproject.org/fedora"}),
        ("docker_image", {"name": "registry.fedoraproject.org/fedora:latest", "same_id_as_storage": "fedora"}),
        ("registry_image", {"ref": "docker://quay.io/fatherlinux/fedora", "creds": "u:p", "architecture": "amd64"}),
    ],
)
def test_schemas_accept_the_labs_parameters(check: str, params: dict) -> None:
    jsonschema.validate(params, CHECKS[check].params_schema)


@pytest.mark.parametrize(
    ("check", "params"),
    [
        ("command", {}),
        ("command", {"run": "true", "exit_code": 0}),
        ("file", {"path": "/x", "mode": "rw-------"}),
        ("dir_image", {"path": "/x", "same_digest_as": "registry.fedoraproject.org/fedora"}),
        ("registry_image", {"ref": "quay.io/fatherlinux/fedora"}),
        ("registry_image", {"ref": "docker://q/f", "creds": "no-colon"}),
        ("storage_image", {"name": "fedora", "labels": {"x": {"nested": 1}}}),
    ],
)
def test_schemas_refuse_bad_parameters(check: str, params: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(params, CHECKS[check].params_schema)


def test_json_paths() -> None:
    doc = [{"Config": {"Labels": {"org.opencontainers.image.title": "t"}}, "Names": ["a", "b"]}]
    assert lookup(doc, '0.Config.Labels."org.opencontainers.image.title"') == "t"
    assert lookup(doc, "[0].Names[1]") == "b"
    assert split_path("a.b") == ["a", "b"]
    with pytest.raises(PathError, match="has no 'Missing'"):
        lookup(doc, "0.Config.Missing")
    with pytest.raises(PathError, match="only 1 entries"):
        lookup(doc, "3")


def test_comparisons_are_lenient_only_for_scalars() -> None:
    assert matches(38, "38") and matches(False, "false") and not matches({"a": 1}, {"a": "1"})
    assert label_mismatches({"version": 38}, {"version": "38"}) == []


def test_names_as_podman_normalises_them() -> None:
    assert normalise("fedora") == "docker.io/library/fedora:latest"
    assert normalise("quay.io/fatherlinux/fedora:40") == "quay.io/fatherlinux/fedora:40"
    assert same_name("fedora:latest", "docker.io/library/fedora:latest")
    assert normalise("Not A Name") == "Not A Name"


def test_platforms() -> None:
    assert go_platform("x86_64\n") == "linux/amd64"
    assert pick_instance([AMD, ARM], "linux/amd64") == AMD
    assert pick_instance([ARM], "linux/arm64") == ARM


def test_source_digests_of_a_list_accept_the_list_or_the_hosts_instance() -> None:
    source = SourceDigests("docker://r/fedora", LIST, (AMD, ARM), "linux/amd64")
    assert source.accepted() == {LIST, AMD.digest}
    assert "holds the linux/arm64/v8 image" in source.mismatch("dir:/d", ARM.digest)
    assert "holds another image" in source.mismatch("dir:/d", "sha256:" + "c" * 64)
    without_platforms = SourceDigests("docker://r/fedora", LIST, (), "linux/amd64")  # engine without instances()
    assert without_platforms.accepted() == {LIST}
    single = SourceDigests("docker://r/fedora:39", AMD.digest, (AMD,), "linux/arm64/v8")
    assert single.accepted() == {AMD.digest} and single.expected() == AMD.digest


def test_dir_file_names_and_the_files_parameter() -> None:
    config, layer = Blob("sha256:" + "c" * 64, 10, "config"), Blob("sha256:" + "d" * 64, 20, "layer")
    names = {"manifest.json", "version", config.file_name, layer.file_name}
    assert Blob(LIST, 1, "image manifest").file_name == "1" * 64 + ".manifest.json"
    assert _check_files("/d", ["manifest", "config", "layer", "version"], names, [config, layer]) == ""
    assert "has no version" in _check_files("/d", ["version"], names - {"version"}, [config, layer])
    assert _check_files("/d", ["manifest.json"], names | {"notes.txt"}, [config, layer]) == ""


def test_command_line_exports_env_and_quotes_args() -> None:
    ctx = CheckContext(host=None, engine=None, env={"A": "x y"})  # type: ignore[arg-type]
    assert ctx.command_line("ls -- %s", "/my dir") == "export A='x y'; ls -- '/my dir'"
