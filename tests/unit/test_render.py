"""Scenario rendering: vars, profiles, --var, StrictUndefined, secrets marked for redaction."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

import pytest

from labcheck.errors import ScenarioValueError, UsageError
from labcheck.redact import Redactor
from labcheck.scenario.model import ProfileChoice, Scenario, Step, bind, choose_profile, parse_var_overrides
from labcheck.scenario.render import SecretNotSet, load_secrets_file


def scenario(**kwargs) -> Scenario:
    step = Step(index=0, id="a", title="A", verify=[{"file": {"path": "/x"}}], hint="{{ greeting }}")
    return Scenario(path=Path("s.yaml"), id="s", title="S", steps=[step], **kwargs)


def test_vars_profiles_and_overrides_in_that_order() -> None:
    s = scenario(vars={"a": "top", "b": "{{ a }}-b", "c": "c"},
                 profiles={"one": {"vars": {"a": "profile"}}, "two": {"vars": {"a": "two"}}}, default_profile="one")
    bound = bind(s, environ={}, redactor=Redactor())
    assert bound.render("{{ b }}") == "profile-b"
    assert bind(s, profile="two", environ={}, redactor=Redactor()).render("{{ b }}") == "two-b"
    assert bind(s, overrides={"a": "cli"}, environ={}, redactor=Redactor()).render("{{ b }} {{ c }}") == "cli-b c"


def test_host_facts_are_variables() -> None:
    bound = bind(scenario(vars={"dir": "{{ home }}/fedora-skopeo"}), host_facts={"home": "/home/ann"},
                 environ={}, redactor=Redactor())
    assert bound.render("{{ dir }}") == "/home/ann/fedora-skopeo"


def test_undefined_variable_is_an_error_not_an_empty_string() -> None:
    bound = bind(scenario(), environ={}, redactor=Redactor())
    with pytest.raises(UsageError, match="greeting"):
        bound.render("hello {{ greeting }}", where="hint")


def test_unknown_profile_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown profile 'nope'"):
        bind(scenario(profiles={"live": {}}), profile="nope", environ={}, redactor=Redactor())


def test_secret_from_environment_or_file_is_registered_for_redaction(tmp_path: Path) -> None:
    redactor = Redactor()
    s = scenario(vars={"creds": "{{ secret('QUAY_CREDS') }}", "token": "{{ secret('TOKEN') }}"})
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text("# lab secrets\nTOKEN='tok-1234567890'\n")
    bound = bind(s, environ={"QUAY_CREDS": "robot+x:S3cretPassw0rd"}, secrets=load_secrets_file(secrets_file),
                 redactor=redactor)
    assert bound.render("{{ creds }}") == "robot+x:S3cretPassw0rd"
    text = (f"--dest-creds robot+x:S3cretPassw0rd, auth {base64.b64encode(b'robot+x:S3cretPassw0rd').decode()}, "
            f"url {quote('robot+x:S3cretPassw0rd', safe='')}, bare S3cretPassw0rd, tok-1234567890")
    redacted = redactor.redact(text)
    assert "S3cretPassw0rd" not in redacted and "tok-1234567890" not in redacted
    assert base64.b64encode(b"robot+x:S3cretPassw0rd").decode() not in redacted
    assert redacted.count("***") == 5


def test_missing_secret_fails_only_what_uses_it_and_says_how_to_set_it() -> None:
    bound = bind(scenario(vars={"c": "{{ secret('QUAY_CREDS') }}", "d": "{{ c }}@x", "e": "plain"}), environ={},
                 redactor=Redactor())
    assert bound.render("{{ e }}") == "plain"
    for template in ("{{ c }}", "{{ d }}", "{{ secret('QUAY_CREDS') }}"):
        with pytest.raises(SecretNotSet) as info:
            bound.render(template)
        assert "QUAY_CREDS" in str(info.value) and "--secrets-file" in str(info.value)


def test_the_profile_fits_the_machine_unless_one_is_asked_for(tmp_path: Path) -> None:
    s = scenario(profiles={"offline": {"lab_env": True, "vars": {"where": "lab"}}, "live": {"vars": {"where": "net"}}},
                 default_profile="offline")
    no_world = {"LABCHECK_STATE_DIR": str(tmp_path / "none")}
    bound = bind(s, environ=no_world, redactor=Redactor())
    assert (bound.profile, bound.render("{{ where }}")) == ("live", "net")
    assert "no lab world" in bound.profile_why
    world = {"LABCHECK_SOURCE_REGISTRY": "127.0.0.1:5000", "LABCHECK_DEST_REGISTRY": "127.0.0.1:5001",
             **{name: "/x" for name in ("LABCHECK_DEST_CREDS_FILE", "DOCKER_HOST", "SSL_CERT_FILE", "CONTAINERS_CONF",
                                        "CONTAINERS_REGISTRIES_CONF", "CONTAINERS_STORAGE_CONF")}}
    bound = bind(s, environ=world, redactor=Redactor())
    assert (bound.profile, bound.render("{{ where }}")) == ("offline", "lab") and "LABCHECK_SOURCE_REGISTRY" in bound.profile_why
    assert choose_profile(s, "offline", lab_world=lambda: None) == ProfileChoice("offline")
    only_live = scenario(profiles={"live": {}}, default_profile="live")
    assert choose_profile(only_live, None, lab_world=lambda: "a world") == ProfileChoice("live")


def test_var_overrides_parse() -> None:
    assert parse_var_overrides(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(UsageError):
        parse_var_overrides(["novalue"])


@pytest.mark.parametrize("template", [
    "{{ lab.__class__.__mro__ }}",
    "{{ lab|attr('_' ~ '_class__') }}",
    "{{ secret.__self__.secrets }}",
    "{{ lab._environ }}",
    "{{ env.__globals__ }}",
])
def test_templates_cannot_reach_python_internals(template: str) -> None:
    bound = bind(scenario(), environ={"HOME": "/root"}, redactor=Redactor())
    with pytest.raises(ScenarioValueError, match=r"template error in hint: access to attribute '_\w*' .* is unsafe"):
        bound.render(template, where="hint")


@pytest.mark.parametrize(("template", "message"), [
    ("{{ 'x' * 100000000 }}", "may not build more than 1000000 items"),
    ("{{ [1] * 10**7 }}", "may not build more than 1000000 items"),
    ("{{ 2 ** 100000000 }}", "an exponent above 1000"),
    ("{{ range(10**9)|list }}", "Range too big"),
    ("{{ 1/0 }}", "ZeroDivisionError"),
    ("{{ 1 + 'a' }}", "TypeError"),
    ("{{ {}['nothing'] }}", "undefined variable"),
    ("{% for %}", "template error"),
])
def test_a_template_that_fails_is_a_scenario_error_not_a_crash(template: str, message: str) -> None:
    bound = bind(scenario(), environ={}, redactor=Redactor())
    with pytest.raises(ScenarioValueError, match=message):
        bound.render(template, where="hint")


def test_ordinary_templates_still_work_in_the_sandbox() -> None:
    bound = bind(scenario(vars={"name": "fedora", "tags": "38 39"}), environ={}, redactor=Redactor())
    assert bound.render("{{ name|upper }}:{{ tags.split()|join(',') }} {{ '-' * 3 }} {{ 2 ** 10 }}") \
        == "FEDORA:38,39 --- 1024"


def test_the_skopeo_scenario_expects_the_hosts_architecture() -> None:
    from labcheck.checks.platforms import platform_facts
    from labcheck.scenario.model import load_scenario

    s = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "skopeo-moving-sharing.yaml")
    for machine, arch in (("aarch64", "arm64"), ("x86_64", "amd64")):
        bound = bind(s, profile="live", environ={}, redactor=Redactor(),
                     host_facts={"home": "/home/s", "user": "s", "host": "vm", **platform_facts(machine)})
        (check,) = s.step("remote-inspect").verify
        assert bound.render(check)["command"]["json"]["Architecture"] == arch
