"""policy.json as skopeo applies it, and credential helpers in auth files, against the real skopeo."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from labcheck.labenv.world import LabWorld
from tests.tools import SKOPEO, run, skopeo_message

pytestmark = [pytest.mark.lab, pytest.mark.skipif(SKOPEO is None, reason="needs the real skopeo")]


@pytest.fixture()
def env(lab_world: LabWorld, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {**os.environ, **lab_world.env(), "HOME": str(home)}


def write_policy(path: Path, policy: dict[str, Any]) -> Path:
    path.write_text(json.dumps(policy))
    return path


def both_copy(env: dict[str, str], tmp_path: Path, src: str, policy: list[str]) -> tuple[Any, Any]:
    """The same copy by skopeo (global --policy flags first) and labcheck (after copy)."""
    theirs = run([SKOPEO, *policy, "copy", "-q", src, f"dir:{tmp_path}/theirs"], env)
    ours = run([sys.executable, "-m", "labcheck.cli", "copy", "-q", *policy, src, f"dir:{tmp_path}/ours"], env)
    return ours, theirs


ACCEPT = [{"type": "insecureAcceptAnything"}]
REJECT = [{"type": "reject"}]


def policies(registry: str, tmp_path: Path) -> list[tuple[str, dict[str, Any], str, bool]]:
    """(what, policy, source, allowed)"""
    fedora = f"docker://{registry}/fedora"
    return [
        ("reject the repository", {"default": ACCEPT, "transports": {"docker": {f"{registry}/fedora": REJECT}}},
         f"{fedora}:38", False),
        ("reject the registry", {"default": ACCEPT, "transports": {"docker": {registry: REJECT}}}, f"{fedora}:38", False),
        ("an exact tag wins over its repository", {"default": ACCEPT, "transports": {"docker": {
            f"{registry}/fedora": REJECT, f"{registry}/fedora:38": ACCEPT}}}, f"{fedora}:38", True),
        ("the repository rule for another tag", {"default": ACCEPT, "transports": {"docker": {
            f"{registry}/fedora": REJECT, f"{registry}/fedora:38": ACCEPT}}}, f"{fedora}:39", False),
        ("the transport default", {"default": REJECT, "transports": {"docker": {"": ACCEPT}}}, f"{fedora}:38", True),
        ("the global default", {"default": REJECT, "transports": {"docker": {"": ACCEPT}}},
         f"dir:{tmp_path}/seed", False),
        ("a dir: scope by path", {"default": ACCEPT, "transports": {"dir": {str(tmp_path): REJECT}}},
         f"dir:{tmp_path}/seed", False),
        ("another registry's rule", {"default": ACCEPT, "transports": {"docker": {"quay.io": REJECT}}},
         f"{fedora}:38", True),
    ]


@pytest.mark.parametrize("index", range(8))
def test_policy_decides_as_in_skopeo(lab_world: LabWorld, env: dict[str, str], tmp_path: Path, index: int) -> None:
    run([SKOPEO, "--insecure-policy", "copy", "-q", f"docker://{lab_world.source_registry}/fedora:38",
         f"dir:{tmp_path}/seed"], env).check_returncode()
    what, policy, src, allowed = policies(lab_world.source_registry, tmp_path)[index]
    path = write_policy(tmp_path / "policy.json", policy)
    ours, theirs = both_copy(env, tmp_path, src, ["--policy", str(path)])
    assert (theirs.returncode == 0) == allowed, (what, theirs.stderr)
    assert ours.returncode == theirs.returncode, (what, ours.stderr)
    if allowed:
        assert (tmp_path / "ours" / "manifest.json").read_bytes() == (tmp_path / "theirs" / "manifest.json").read_bytes()
        return
    assert ours.stderr.splitlines()[0] == f"labcheck copy: {skopeo_message(theirs.stderr)}"
    assert skopeo_message(theirs.stderr).startswith("Source image rejected: Running image ")
    assert not (tmp_path / "ours").exists()
    (tmp_path / "x").mkdir()
    insecure, skopeo_insecure = both_copy(env, tmp_path / "x", src, ["--policy", str(path), "--insecure-policy"])
    assert insecure.returncode == skopeo_insecure.returncode == 0, insecure.stderr  # --insecure-policy lets it through


def test_the_users_policy_file_is_found_in_home(lab_world: LabWorld, env: dict[str, str], tmp_path: Path) -> None:
    config = Path(env["HOME"]) / ".config" / "containers"
    config.mkdir(parents=True)
    write_policy(config / "policy.json", {"default": REJECT})
    ours, theirs = both_copy(env, tmp_path, f"docker://{lab_world.source_registry}/fedora:38", [])
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.splitlines()[0] == f"labcheck copy: {skopeo_message(theirs.stderr)}"


@pytest.mark.parametrize("policy", [{"transports": {}}, {"default": []}, {"default": [{"type": "nope"}]}])
def test_a_broken_policy_is_refused_before_anything(lab_world: LabWorld, env: dict[str, str], tmp_path: Path,
                                                    policy: dict[str, Any]) -> None:
    path = write_policy(tmp_path / "policy.json", policy)
    ours, theirs = both_copy(env, tmp_path, f"docker://{lab_world.source_registry}/fedora:38", ["--policy", str(path)])
    assert theirs.returncode == 1 and ours.returncode == 2
    assert skopeo_message(theirs.stderr).startswith(f'Error loading trust policy: invalid policy in "{path}": ')
    assert ours.stderr.splitlines()[0].startswith(f'labcheck copy: Error loading trust policy: invalid policy in "{path}": ')
    if "default" not in policy:
        assert ours.stderr.splitlines()[0] == f"labcheck copy: {skopeo_message(theirs.stderr)}"


@pytest.mark.parametrize("kind", ["signedBy", "sigstoreSigned"])
def test_signature_requirements_are_refused_naming_the_skopeo_driver(lab_world: LabWorld, env: dict[str, str],
                                                                     tmp_path: Path, kind: str) -> None:
    requirement = {"type": kind, "keyType": "GPGKeys", "keyPath": "/k"} if kind == "signedBy" else \
        {"type": kind, "keyPath": "/k.pub"}
    path = write_policy(tmp_path / "policy.json", {"default": [requirement]})
    ours, theirs = both_copy(env, tmp_path, f"docker://{lab_world.source_registry}/fedora:38", ["--policy", str(path)])
    assert theirs.returncode == 1 and skopeo_message(theirs.stderr).startswith("Source image rejected: ")
    assert ours.returncode == 2
    line = ours.stderr.splitlines()[0]
    assert line.startswith("labcheck copy: Source image rejected: ") and kind in line and "--driver skopeo" in line
    assert not (tmp_path / "ours").exists()


# --- credential helpers ------------------------------------------------------------------------------------


@pytest.fixture()
def helper_env(lab_world: LabWorld, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A docker-credential-labtest on PATH that answers with the destination registry's credentials."""
    creds = lab_world.dest_credentials()
    secret = tmp_path / "helper-secret.json"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"ServerURL": lab_world.dest_registry, "Username": creds.username, "Secret": creds.password}, out)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-labtest"
    helper.write_text(f'#!/bin/sh\n[ "$1" = get ] || exit 1\nread server\n'
                      f'if [ "$server" = "{lab_world.dest_registry}" ]; then cat {secret}; '
                      'else echo "credentials not found in native keychain"; exit 1; fi\n')
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    return {**env, "PATH": f"{bin_dir}:{env['PATH']}"}


def test_cred_helpers_in_the_auth_file_are_asked(lab_world: LabWorld, helper_env: dict[str, str],
                                                 tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {}, "credHelpers": {lab_world.dest_registry: "labtest"}}))
    pushed = f"docker://{lab_world.dest_registry}/helpers/fedora:1"
    source = f"docker://{lab_world.source_registry}/fedora:38"
    copy = run([sys.executable, "-m", "labcheck.cli", "copy", "-q", "--dest-authfile", str(authfile), source, pushed],
               helper_env)
    assert copy.returncode == 0, copy.stderr
    theirs = run([SKOPEO, "inspect", "--no-tags", "--authfile", str(authfile), pushed], helper_env)
    ours = run([sys.executable, "-m", "labcheck.cli", "inspect", "--no-tags", "--authfile", str(authfile), pushed],
               helper_env)
    assert theirs.returncode == 0 and ours.stdout == theirs.stdout
    # a registry the helper does not know: anonymous, as skopeo (the source registry allows it)
    other = run([sys.executable, "-m", "labcheck.cli", "inspect", "--no-tags", "--authfile", str(authfile), source],
                helper_env)
    assert other.returncode == 0, other.stderr


def test_creds_store_is_the_default_helper(lab_world: LabWorld, helper_env: dict[str, str], tmp_path: Path) -> None:
    """docker's credsStore; skopeo 1.9.3 ignores it (containers/image reads only credHelpers)."""
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {}, "credsStore": "labtest"}))
    target = f"docker://{lab_world.dest_registry}/helpers/store:1"
    source = f"docker://{lab_world.source_registry}/fedora:38"
    copy = run([sys.executable, "-m", "labcheck.cli", "copy", "-q", "--dest-authfile", str(authfile), source, target],
               helper_env)
    assert copy.returncode == 0, copy.stderr
    ours = run([sys.executable, "-m", "labcheck.cli", "inspect", "--no-tags", "--authfile", str(authfile), target],
               helper_env)
    assert ours.returncode == 0, ours.stderr
    creds = lab_world.dest_credentials()
    direct = run([SKOPEO, "inspect", "--no-tags", "--creds", f"{creds.username}:{creds.password}", target], helper_env)
    assert ours.stdout == direct.stdout


def test_a_missing_helper_is_one_line(lab_world: LabWorld, env: dict[str, str], tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"credHelpers": {lab_world.dest_registry: "nope"}}))
    proc = run([sys.executable, "-m", "labcheck.cli", "inspect", "--authfile", str(authfile),
                f"docker://{lab_world.dest_registry}/fedora:38"], env)
    assert proc.returncode == 2
    assert 'exec: "docker-credential-nope": executable file not found in $PATH' in proc.stderr.splitlines()[0]
