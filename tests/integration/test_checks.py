"""The checks library against the real skopeo, podman, docker and registries of the lab world."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
import testinfra

from labcheck.checks import CHECKS, CheckContext, CheckResult, EngineQueries
from labcheck.labenv.world import LabWorld
from tests.conftest import run_in_world

pytestmark = pytest.mark.lab

STORAGE_NAME = "labcheck-checks/fedora"  # docker.io/labcheck-checks/fedora:latest, this module's own
CONTAINER = "labcheck-checks-meta"


@pytest.fixture(scope="module")
def ctx(lab_world: LabWorld) -> CheckContext:
    engine = EngineQueries(cert_dir=str(lab_world.tls_dir / "cert-dir"))
    return CheckContext(host=testinfra.get_host("local://"), engine=engine, env=lab_world.env())


@pytest.fixture(scope="module")
def run(lab_world: LabWorld) -> Callable[..., Any]:
    def tool(*argv: str, check: bool = True):
        return run_in_world(lab_world, list(argv), check=check)

    return tool


@pytest.fixture(scope="module")
def source(lab_world: LabWorld) -> str:
    return f"docker://{lab_world.source_registry}/fedora"


def verify(ctx: CheckContext, check: str, /, **params: Any) -> CheckResult:
    result = CHECKS[check].function(ctx, **params)
    assert result.check == check and result.summary
    assert result.passed == (result.reason == ""), result
    return result


def passes(ctx: CheckContext, check: str, /, **params: Any) -> CheckResult:
    result = verify(ctx, check, **params)
    assert result.passed, result.reason
    return result


def fails(ctx: CheckContext, check: str, /, **params: Any) -> CheckResult:
    result = verify(ctx, check, **params)
    assert not result.passed, result
    return result


# --- command and file -----------------------------------------------------------------------


def test_command_checks_exit_status_output_and_json_fields(ctx: CheckContext, source: str) -> None:
    inspect = f"skopeo inspect {source}"
    ok = passes(ctx, "command", run=inspect, stdout_contains=["Fedora Project", "DISTTAG"],
                json={"Labels.vendor": "Fedora Project", "Architecture": "amd64", "Labels.version": 38})
    assert ok.commands == [inspect] and "Fedora Project" in ok.output
    assert "version is" in fails(ctx, "command", run=inspect, json={"Labels.version": "40"}).reason
    assert "has no" in fails(ctx, "command", run=inspect, json={"Labels.missing": "x"}).reason
    assert "not JSON" in fails(ctx, "command", run="echo hello", json={"a": 1}).reason
    passes(ctx, "command", run="echo out; echo err >&2; exit 3", exit_status=3, stdout_matches="^ou+t$",
           stderr_contains="err")
    bad = fails(ctx, "command", run=f"skopeo inspect {source}-nothere")
    assert "exited with status 1, not 0" in bad.reason and "manifest unknown" in bad.reason


def test_command_sees_the_context_env(ctx: CheckContext, lab_world: LabWorld) -> None:
    passes(ctx, "command", run="echo $LABCHECK_SOURCE_REGISTRY", stdout_contains=lab_world.source_registry)


def test_file_exists_mode_owner_contents(ctx: CheckContext, tmp_path: Path) -> None:
    secret = tmp_path / "creds"
    secret.write_text("fatherlinux+fedora\n")
    secret.chmod(0o600)
    passes(ctx, "file", path=str(secret), mode="0600", owner="root", contains="fatherlinux", is_directory=False)
    passes(ctx, "file", path=str(tmp_path), is_directory=True)
    passes(ctx, "file", path=str(tmp_path / "absent"), exists=False)
    assert fails(ctx, "file", path=str(tmp_path / "absent")).reason == f"{tmp_path}/absent does not exist"
    assert "mode 0600, expected 0644" in fails(ctx, "file", path=str(secret), mode="644").reason
    assert "does not contain 'quay'" in fails(ctx, "file", path=str(secret), contains=["fedora", "quay"]).reason
    assert "expected a directory" in fails(ctx, "file", path=str(secret), is_directory=True).reason
    assert "exists but should not" in fails(ctx, "file", path=str(secret), exists=False).reason


# --- dir_image ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pulled_dir(tmp_path_factory: pytest.TempPathFactory, run, source: str) -> Path:
    """What the lab's `skopeo copy docker://…/fedora dir:$HOME/fedora-skopeo` leaves."""
    target = tmp_path_factory.mktemp("dirs") / "fedora-skopeo"
    run("skopeo", "copy", source, f"dir:{target}")
    return target


@pytest.fixture
def damaged(pulled_dir: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of the pulled directory to damage, and its manifest."""
    target = tmp_path / "fedora-skopeo"
    shutil.copytree(pulled_dir, target)
    return target, json.loads((target / "manifest.json").read_text())


def test_dir_image_of_the_pull_is_complete_and_the_sources_image(ctx: CheckContext, pulled_dir: Path,
                                                                  source: str) -> None:
    result = passes(ctx, "dir_image", path=str(pulled_dir), files=["manifest", "config", "layer", "version"],
                    same_digest_as=source)
    assert any(c.startswith("cd -- ") and "sha256sum" in c for c in result.commands)
    assert result.queries == [f"manifest digest and platforms of {source}"]
    # The dir holds the amd64 instance of the list: its digest is the instance's, not the list's.
    amd64 = [i.digest for i in ctx.engine.instances(source) if i.platform == "linux/amd64"]
    assert [result.actual] == amd64 and result.actual != ctx.engine.manifest_digest(source)


class TwoQuestionEngine:
    """A RegistryQueries without the optional instances() (like the runner's driver): the checks ask the engine."""

    def __init__(self, engine: EngineQueries) -> None:
        self._engine = engine

    def manifest_digest(self, ref: str, *, creds: str | None = None) -> str:
        return self._engine.manifest_digest(ref, creds=creds)

    def inspect(self, ref: str, *, creds: str | None = None) -> dict[str, Any]:
        return self._engine.inspect(ref, creds=creds)


def test_same_digest_as_works_with_an_engine_without_instances(ctx: CheckContext, pulled_dir: Path,
                                                               source: str) -> None:
    plain = CheckContext(host=ctx.host, engine=TwoQuestionEngine(ctx.engine), env=ctx.env)  # type: ignore[arg-type]
    passes(plain, "dir_image", path=str(pulled_dir), same_digest_as=source)


def test_dir_image_missing_directory(ctx: CheckContext, tmp_path: Path) -> None:
    result = fails(ctx, "dir_image", path=str(tmp_path / "fedora-skopeo"))
    assert result.reason == f"the directory {tmp_path}/fedora-skopeo does not exist: run the copy again"


def test_dir_image_without_manifest(ctx: CheckContext, damaged) -> None:
    target, _ = damaged
    (target / "manifest.json").unlink()
    assert fails(ctx, "dir_image", path=str(target)).reason == \
        f"the directory {target} has no manifest.json: run the copy again"


def test_dir_image_one_flipped_byte_in_the_layer_names_the_blob(ctx: CheckContext, damaged) -> None:
    target, manifest = damaged
    layer = manifest["layers"][0]["digest"]
    blob = target / layer.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    result = fails(ctx, "dir_image", path=str(target))
    assert f"the layer {layer} in {target} is corrupted" in result.reason
    assert "sha256sum" in result.commands[-1]


def test_dir_image_missing_blob(ctx: CheckContext, damaged) -> None:
    target, manifest = damaged
    config = manifest["config"]["digest"]
    (target / config.split(":")[1]).unlink()
    assert fails(ctx, "dir_image", path=str(target)).reason == \
        f"the config {config} is missing from {target}: run the copy again"


def test_dir_image_truncated_blob_and_extra_files(ctx: CheckContext, damaged) -> None:
    target, manifest = damaged
    layer = manifest["layers"][0]
    blob = target / layer["digest"].split(":")[1]
    blob.write_bytes(blob.read_bytes()[:-10])
    assert f"has {layer['size'] - 10} bytes, but the manifest says {layer['size']}" in \
        fails(ctx, "dir_image", path=str(target)).reason


def test_dir_image_files_names_what_the_lab_shows(ctx: CheckContext, damaged) -> None:
    target, manifest = damaged
    (target / "notes.txt").write_text("the student's own file does no harm")
    passes(ctx, "dir_image", path=str(target), files=["manifest.json", "version", "config", "layers"])
    assert "has no signature-1: run the copy again" in \
        fails(ctx, "dir_image", path=str(target), files=["manifest", "signature-1"]).reason


def test_dir_image_of_another_tag_is_not_the_sources(ctx: CheckContext, pulled_dir: Path, source: str) -> None:
    result = fails(ctx, "dir_image", path=str(pulled_dir), same_digest_as=f"{source}:39")
    assert result.reason.startswith(f"dir:{pulled_dir} holds another image than {source}:39")


def test_dir_image_of_another_platform_says_so(ctx: CheckContext, run, source: str, tmp_path: Path) -> None:
    target = tmp_path / "arm"
    run("skopeo", "--override-arch", "arm64", "copy", source, f"dir:{target}")
    result = fails(ctx, "dir_image", path=str(target), same_digest_as=source)
    assert "holds the linux/arm64/v8 image" in result.reason and "this host is linux/amd64" in result.reason


def test_dir_image_copied_with_all_keeps_the_list(ctx: CheckContext, run, source: str, tmp_path: Path) -> None:
    target = tmp_path / "all"
    run("skopeo", "copy", "--all", source, f"dir:{target}")
    result = passes(ctx, "dir_image", path=str(target), same_digest_as=source)
    assert result.actual == ctx.engine.manifest_digest(source)
    instance = json.loads((target / "manifest.json").read_text())["manifests"][1]["digest"]
    (target / f"{instance.split(':')[1]}.manifest.json").unlink()
    assert "holds a list but not the manifest of its linux/arm64/v8 image" in \
        fails(ctx, "dir_image", path=str(target)).reason


# --- storage_image, container, docker_image ----------------------------------------------------


def test_engine_queries_trust_the_lab_ca_through_env(lab_world: LabWorld, source: str) -> None:
    engine = EngineQueries(env={"SSL_CERT_FILE": lab_world.env()["SSL_CERT_FILE"]})
    instances = engine.instances(source)
    assert sorted(i.platform for i in instances) == ["linux/amd64", "linux/arm64/v8"]
    assert engine.inspect(f"{source}:40")["Labels"]["version"] == "40"
    assert engine.manifest_digest(source) not in {i.digest for i in instances}


def test_storage_image_normalises_names_and_compares_digests(ctx: CheckContext, run, source: str) -> None:
    run("skopeo", "copy", source, "containers-storage:fedora")
    result = passes(ctx, "storage_image", name="fedora", same_digest_as=source,
                    labels={"vendor": "Fedora Project", "version": 38})
    assert result.commands[0] == "podman image inspect -- docker.io/library/fedora:latest"
    assert "label version is \"38\", not \"40\"" in \
        fails(ctx, "storage_image", name="fedora", labels={"version": "40"}).reason


def test_storage_image_absent_or_another_image(ctx: CheckContext, run, source: str) -> None:
    run("podman", "rmi", "-f", STORAGE_NAME, check=False)
    result = fails(ctx, "storage_image", name=STORAGE_NAME)
    assert result.reason == ("there is no image docker.io/labcheck-checks/fedora:latest in this user's container "
                             "storage (podman images)")
    run("skopeo", "copy", f"{source}:39", f"containers-storage:{STORAGE_NAME}")
    other = fails(ctx, "storage_image", name=STORAGE_NAME, same_digest_as=source)
    assert "holds another image than" in other.reason


def test_container_running_image_labels(ctx: CheckContext, run, lab_world: LabWorld) -> None:
    image = f"{lab_world.source_registry}/fedora"
    run("podman", "rm", "-f", CONTAINER, check=False)
    assert fails(ctx, "container", name=CONTAINER).reason == \
        f"there is no podman container named {CONTAINER} (podman ps -a)"
    run("podman", "run", "--name", CONTAINER, "-id", image, "bash")
    try:
        passes(ctx, "container", name=CONTAINER, running=True, image=image,
               labels={"vendor": "Fedora Project", "license": "MIT"})
        assert f"runs {image}:latest, not docker.io/library/fedora:latest" in \
            fails(ctx, "container", name=CONTAINER, image="fedora").reason
        run("podman", "stop", "--time", "0", CONTAINER)
        stopped = fails(ctx, "container", name=CONTAINER, running=True)
        assert stopped.reason.startswith(f"the container {CONTAINER} is ") and "expected running" in stopped.reason
        passes(ctx, "container", name=CONTAINER, running=False)
    finally:
        run("podman", "rm", "-f", CONTAINER, check=False)


def test_docker_image_and_the_podman_to_docker_move(ctx: CheckContext, run, lab_world: LabWorld,
                                                     source: str) -> None:
    daemon = f"unix://{lab_world.docker_socket}"
    run("skopeo", "copy", source, f"containers-storage:{STORAGE_NAME}")
    run("docker", "rmi", "-f", f"{STORAGE_NAME}:latest", check=False)
    missing = fails(ctx, "docker_image", name=STORAGE_NAME, same_id_as_storage=STORAGE_NAME)
    assert missing.reason.startswith("Docker has no image docker.io/labcheck-checks/fedora:latest")

    run("skopeo", "copy", "--dest-daemon-host", daemon, f"containers-storage:{STORAGE_NAME}",
        f"docker-daemon:{STORAGE_NAME}:latest")
    passes(ctx, "docker_image", name=f"{STORAGE_NAME}:latest", same_id_as_storage=STORAGE_NAME)

    run("skopeo", "copy", "--dest-daemon-host", daemon, f"{source}:39", f"docker-daemon:{STORAGE_NAME}:latest")
    other = fails(ctx, "docker_image", name=STORAGE_NAME, same_id_as_storage=STORAGE_NAME)
    assert f"but podman's docker.io/{STORAGE_NAME}:latest is" in other.reason
    assert other.expected != other.actual


# --- registry_image -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dest_authfile(lab_world: LabWorld, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An auth file for the destination, so that no password goes on a command line in the tests either."""
    creds = lab_world.dest_credentials()
    auth = tmp_path_factory.mktemp("auth") / "auth.json"
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    auth.write_text(json.dumps({"auths": {lab_world.dest_registry: {"auth": token}}}))
    return str(auth)


def test_registry_image_after_the_registry_to_registry_copy(ctx: CheckContext, run, lab_world: LabWorld,
                                                            source: str, dest_authfile: str) -> None:
    dest = f"docker://{lab_world.dest_registry}/labcheck-checks/fedora:latest"
    run("skopeo", "copy", "--dest-authfile", dest_authfile, source, dest)
    creds = lab_world.dest_credentials()
    both = f"{creds.username}:{creds.password}"
    result = passes(ctx, "registry_image", ref=dest, creds=both, same_digest_as=source,
                    labels={"vendor": "Fedora Project"}, architecture="amd64", os="linux")
    assert result.commands == ["uname -m"]  # the registries were asked by the engine, not on the host
    assert creds.password not in json.dumps(result.__dict__)


def test_registry_image_holding_another_tag_or_wrong_creds(ctx: CheckContext, run, lab_world: LabWorld,
                                                          source: str, dest_authfile: str) -> None:
    dest = f"docker://{lab_world.dest_registry}/labcheck-checks/fedora:other"
    run("skopeo", "copy", "--dest-authfile", dest_authfile, f"{source}:39", dest)
    creds = lab_world.dest_credentials()
    both = f"{creds.username}:{creds.password}"
    other = fails(ctx, "registry_image", ref=dest, creds=both, same_digest_as=source)
    assert other.reason.startswith(f"{dest} holds another image than {source}")
    assert "version is \"39\", not \"38\"" in fails(ctx, "registry_image", ref=dest, creds=both,
                                                    labels={"version": "38"}).reason

    wrong = fails(ctx, "registry_image", ref=dest, creds=f"{creds.username}:not-the-password")
    assert wrong.reason == (f"the registry refused the credentials of user {creds.username} for {dest}: "
                            "check the user name and password")
    assert "not-the-password" not in json.dumps(wrong.__dict__)
    anonymous = fails(ctx, "registry_image", ref=dest)
    assert "asks for credentials" in anonymous.reason
    absent = fails(ctx, "registry_image", ref=f"docker://{lab_world.source_registry}/nothere")
    assert absent.reason == f"there is no image at docker://{lab_world.source_registry}/nothere"
