"""Credentials lookup (auth files in containers' search order) and WWW-Authenticate parsing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from labcheck.engine.registry.credentials import auth_file_candidates, credentials_for, normalise_key
from labcheck.engine.registry.challenge import parse_challenges
from labcheck.engine.base.errors import UsageError
from labcheck.engine.base.options import Credentials, SideOptions


def entry(user: str, password: str) -> dict:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def write(path: Path, auths: dict, *, legacy: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(auths if legacy else {"auths": auths}))
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home and no auth-related variables from the real environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    for name in ("REGISTRY_AUTH_FILE", "XDG_CONFIG_HOME", "DOCKER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return home


def lookup(registry: str = "reg.example:5000", repository: str = "ns/app", **opts) -> Credentials | None:
    return credentials_for(registry, repository, SideOptions(**opts))


def test_search_order(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert auth_file_candidates(SideOptions()) == [
        tmp_path / "run/containers/auth.json", home / ".config/containers/auth.json",
        home / ".docker/config.json", home / ".dockercfg",
    ]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "env.json"))
    assert auth_file_candidates(SideOptions()) == [
        tmp_path / "env.json", tmp_path / "cfg/containers/auth.json", tmp_path / "docker/config.json",
        home / ".dockercfg",
    ]
    assert auth_file_candidates(SideOptions(authfile=str(tmp_path / "flag.json")))[0] == tmp_path / "flag.json"


def test_explicit_creds_win_and_no_creds_means_anonymous(home: Path, tmp_path: Path) -> None:
    write(tmp_path / "run/containers/auth.json", {"reg.example:5000": entry("file", "f")})
    assert lookup(creds=Credentials("cli", "c")) == Credentials("cli", "c")
    assert lookup(no_creds=True) is None
    assert lookup() == Credentials("file", "f")


def test_each_file_in_turn(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docker = write(home / ".docker/config.json", {"reg.example:5000": entry("docker", "d")})
    assert lookup() == Credentials("docker", "d")
    write(home / ".config/containers/auth.json", {"reg.example:5000": entry("xdg-config", "x")})
    assert lookup() == Credentials("xdg-config", "x")
    write(tmp_path / "run/containers/auth.json", {"reg.example:5000": entry("runtime", "r")})
    assert lookup() == Credentials("runtime", "r")
    write(tmp_path / "flag.json", {"reg.example:5000": entry("authfile", "a")})
    assert lookup(authfile=str(tmp_path / "flag.json")) == Credentials("authfile", "a")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "flag.json"))
    assert lookup() == Credentials("authfile", "a")
    # DOCKER_CONFIG replaces ~/.docker
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    for path in (tmp_path / "run/containers/auth.json", home / ".config/containers/auth.json"):
        path.unlink()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    assert lookup() is None
    write(tmp_path / "dc/config.json", {"reg.example:5000": entry("docker-config", "dc")})
    assert lookup() == Credentials("docker-config", "dc")
    assert docker.exists()


def test_an_authfile_without_the_registry_falls_through(home: Path, tmp_path: Path) -> None:
    write(tmp_path / "flag.json", {"other.example": entry("other", "o")})
    write(home / ".docker/config.json", {"reg.example:5000": entry("docker", "d")})
    assert lookup(authfile=str(tmp_path / "flag.json")) == Credentials("docker", "d")


def test_most_specific_key_first(home: Path, tmp_path: Path) -> None:
    write(tmp_path / "run/containers/auth.json", {
        "reg.example:5000": entry("registry", "1"),
        "reg.example:5000/ns": entry("namespace", "2"),
        "reg.example:5000/ns/app": entry("repository", "3"),
    })
    assert lookup(repository="ns/app") == Credentials("repository", "3")
    assert lookup(repository="ns/other") == Credentials("namespace", "2")
    assert lookup(repository="elsewhere/app") == Credentials("registry", "1")
    assert lookup(repository="ns/app/deeper") == Credentials("repository", "3")
    assert lookup(registry="reg.example") is None  # the port is part of the key


def test_a_specific_key_in_a_later_file_loses_to_an_earlier_file(home: Path, tmp_path: Path) -> None:
    write(tmp_path / "run/containers/auth.json", {"reg.example:5000": entry("first-file", "1")})
    write(home / ".docker/config.json", {"reg.example:5000/ns/app": entry("second-file", "2")})
    assert lookup() == Credentials("first-file", "1")


def test_url_keys_and_docker_hub_aliases(home: Path) -> None:
    write(home / ".docker/config.json", {
        "https://index.docker.io/v1/": entry("hub", "h"),
        "https://reg.example:5000/v2/": entry("url", "u"),
    })
    assert lookup() == Credentials("url", "u")
    assert credentials_for("docker.io", "library/fedora", SideOptions()) == Credentials("hub", "h")
    assert normalise_key("http://reg.example/") == "reg.example"
    assert normalise_key("reg.example/ns/") == "reg.example/ns"


def test_legacy_dockercfg(home: Path) -> None:
    write(home / ".dockercfg", {"reg.example:5000": entry("legacy", "l")}, legacy=True)
    assert lookup() == Credentials("legacy", "l")


def test_entries_without_auth_are_skipped_and_bad_ones_reported(home: Path, tmp_path: Path) -> None:
    write(tmp_path / "run/containers/auth.json", {"reg.example:5000/ns/app": {"identitytoken": "x"},
                                                  "reg.example:5000": entry("registry", "1")})
    assert lookup() == Credentials("registry", "1")
    write(tmp_path / "run/containers/auth.json", {"reg.example:5000": {"auth": "%%%"}})
    with pytest.raises(UsageError, match="not base64"):
        lookup()
    write(tmp_path / "run/containers/auth.json", {"reg.example:5000": {"auth": base64.b64encode(b"nocolon").decode()}})
    with pytest.raises(UsageError, match="missing ':'"):
        lookup()
    (tmp_path / "run/containers/auth.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read auth file"):
        lookup()


def test_passwords_with_colons(home: Path, tmp_path: Path) -> None:
    write(tmp_path / "run/containers/auth.json", {"reg.example:5000": entry("user", "pa:ss:word")})
    creds = lookup()
    assert creds == Credentials("user", "pa:ss:word")
    assert "pa:ss" not in repr(creds)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
        (
            'Bearer realm="https://auth.example/token",service="registry.example",'
            'scope="repository:samalba/my-app:pull,push",error="insufficient_scope"',
            [("bearer", {"realm": "https://auth.example/token", "service": "registry.example",
                         "scope": "repository:samalba/my-app:pull,push", "error": "insufficient_scope"})],
        ),
        ('Basic realm="a", Bearer realm="b", service=svc', [("basic", {"realm": "a"}),
                                                           ("bearer", {"realm": "b", "service": "svc"})]),
        ('bearer Realm = "r\\"q"', [("bearer", {"realm": 'r"q'})]),
        ("Basic", [("basic", {})]),
        ("", []),
    ],
)
def test_parse_challenges(header: str, expected: list[tuple[str, dict]]) -> None:
    assert [(c.scheme, c.params) for c in parse_challenges(header)] == expected
