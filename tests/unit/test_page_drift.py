"""`labcheck lint --page`: edits of the course page that the scenario no longer matches, each at its page line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from labcheck.page.drift import Drift, encodes, page_drift
from labcheck.page.parse import parse_page
from labcheck.scenario.model import load_scenario

ROOT = Path(__file__).parent.parent.parent
COURSE_PAGE = ROOT / "course" / "05-skopeo-moving-sharing.md"
SCENARIO = ROOT / "scenarios" / "skopeo-moving-sharing.yaml"
PASSWORD = "5R4YX2LHHVB682OX232TMFSBGFT350IV70SBLDKU46LAFIY6HEGN4OYGJ2SCD4HI"
LABCHECK = Path(sys.executable).parent / "labcheck"


def scenario_line(text: str) -> int:
    """The line of the real scenario that holds text."""
    return next(n for n, line in enumerate(SCENARIO.read_text().splitlines(), 1) if text in line)


def edited(tmp_path: Path, edit: Callable[[list[str]], list[str]], name: str = "page.md") -> Path:
    """A copy of the course page with lines (1-based as the list index + 1) edited."""
    path = tmp_path / name
    path.write_text("".join(edit(COURSE_PAGE.read_text().splitlines(keepends=True))))
    return path


def replace_on(line: int, old: str, new: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        assert old in lines[line - 1]
        return [*lines[:line - 1], lines[line - 1].replace(old, new), *lines[line:]]
    return edit


def drifts(page: Path, scenario: Path = SCENARIO) -> list[Drift]:
    return page_drift(parse_page(page), load_scenario(scenario))


def lint(page: Path, scenario: Path = SCENARIO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LABCHECK), "lint", "--page", str(page), str(scenario)], capture_output=True, text=True)


# --- the acceptance edits ---------------------------------------------------------------------------


@pytest.mark.command
def test_the_unchanged_page_lints_clean() -> None:
    assert drifts(COURSE_PAGE) == []
    result = lint(COURSE_PAGE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "13 page command(s), no drift" in result.stderr


@pytest.mark.command
def test_the_directory_renamed(tmp_path: Path) -> None:
    page = edited(tmp_path, lambda lines: [line.replace("fedora-skopeo", "fedora-images") for line in lines])
    result = lint(page)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert len(out) == 3
    assert out[0].startswith(f"{page}:439: step 'pull-to-dir' names `skopeo copy docker://registry.fedoraproject.org/"
                             "fedora dir:$HOME/fedora-skopeo`, which the page no longer has; did you mean `skopeo copy "
                             "docker://registry.fedoraproject.org/fedora dir:$HOME/fedora-images`?")
    assert out[0].endswith(f"({SCENARIO}:{scenario_line('- skopeo copy docker://registry.fedoraproject.org/fedora dir:')})")
    path_line = scenario_line('path: "{{ dir_path }}"')
    assert out[1] == (f"{page}:439: the page copies to dir:$HOME/fedora-images, but step 'pull-to-dir' verifies "
                      f"dir_image.path $HOME/fedora-skopeo ({SCENARIO}:{path_line})")
    assert out[2].startswith(f"{page}:459: step 'pull-to-dir' names `ls -alh ~/fedora-skopeo`")
    assert "did you mean `ls -alh ~/fedora-images`?" in out[2]
    assert "3 drift(s)" in result.stderr


@pytest.mark.command
def test_a_label_value_changed(tmp_path: Path) -> None:
    page = edited(tmp_path, replace_on(73, "Fedora Project", "Fedora Team"))
    [drift] = drifts(page)
    assert (drift.page_line, drift.scenario_line) == (73, scenario_line("Labels.vendor: Fedora Project"))
    assert drift.message == ("the page shows Labels.vendor: Fedora Team, but step 'remote-inspect' verifies "
                             "Labels.vendor: Fedora Project")
    assert lint(page).returncode == 1


def test_a_label_of_the_running_container_changed(tmp_path: Path) -> None:
    page = edited(tmp_path, replace_on(277, '"38"', '"39"'))
    [drift] = drifts(page)
    assert (drift.page_line, drift.scenario_line) == (277, scenario_line("labels: {license: MIT"))
    assert "container.labels.version: 38" in drift.message


def test_an_env_entry_changed_and_a_label_removed(tmp_path: Path) -> None:
    page = edited(tmp_path, lambda lines: [
        line for n, line in enumerate(replace_on(83, "FGC=f38", "FGC=f40")(lines), 1) if n != 74])
    found = [(d.page_line, d.message) for d in drifts(page)]
    assert (82, "the page shows Env.1: FGC=f40, but step 'remote-inspect' verifies Env.1: FGC=f38") in found
    assert (61, "step 'remote-inspect' verifies Labels.version: 38, which the page does not show for "
                "`skopeo inspect docker://registry.fedoraproject.org/fedora`") in found
    assert len(found) == 2


@pytest.mark.command
def test_a_command_removed(tmp_path: Path) -> None:
    # The `ls -alh ~/fedora-skopeo` paragraph and block (lines 456-467) taken out.
    page = edited(tmp_path, lambda lines: [*lines[:455], *lines[467:]])
    result = lint(page)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{page}:439: step 'pull-to-dir' names `ls -alh ~/fedora-skopeo`, which the page no longer has (expected "
        "after line 439, `skopeo copy docker://registry.fedoraproject.org/fedora dir:$HOME/fedora-skopeo`) "
        f"({SCENARIO}:{scenario_line('- ls -alh ~/fedora-skopeo')})"]


@pytest.mark.command
def test_a_command_added(tmp_path: Path) -> None:
    page = edited(tmp_path, lambda lines: [*lines[:467], "\n```sh\nskopeo inspect dir:$HOME/fedora-skopeo\n```\n",
                                           *lines[467:]])
    [drift] = drifts(page)
    assert drift.page_line == 470
    assert drift.scenario_line == scenario_line("page:")
    assert drift.message.startswith("`skopeo inspect dir:$HOME/fedora-skopeo` is encoded by no step and not declared "
                                    "replaced; the closest command the scenario names is `skopeo copy")
    assert lint(page).returncode == 1


@pytest.mark.command
def test_the_container_renamed(tmp_path: Path) -> None:
    page = edited(tmp_path, lambda lines: [line.replace("meta-data-container", "web-container") for line in lines])
    found = [(d.page_line, d.scenario_line, d.message) for d in drifts(page)]
    assert (98, scenario_line('name: "{{ container_name }}"'),
            "the page names the container web-container, but step 'metadata-container' verifies container.name "
            "meta-data-container") in found
    assert any(line == 98 and "did you mean `podman run --name web-container" in m for line, _, m in found)
    assert any(line == 99 and "did you mean `podman inspect web-container`?" in m for line, _, m in found)
    assert lint(page).returncode == 1


# --- more drift -----------------------------------------------------------------------------------------


def test_a_replaced_command_the_page_changed(tmp_path: Path) -> None:
    page = edited(tmp_path, replace_on(491, "enable --now docker", "start docker"))
    [drift] = drifts(page)
    assert (drift.page_line, drift.scenario_line) == (491, scenario_line("- command: sudo systemctl enable"))
    assert drift.message == ("page.replaced names `sudo systemctl enable --now docker`, which the page no longer has; "
                             "did you mean `sudo systemctl start docker`?")


def test_a_hint_that_is_not_the_page_command(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.read_text().replace("docker images | grep {{ source }}",
                                                     "docker images | grep {{ docker_repo }}"))
    [drift] = drifts(COURSE_PAGE, scenario)
    assert drift.page_line == 525
    assert drift.message == ("step 'podman-to-docker' hint (profile live) does not contain the page's command "
                             "`docker images | grep registry.fedoraproject.org`; its closest command is "
                             "`docker images | grep registry.fedoraproject.org/fedora`")
    assert scenario.read_text().splitlines()[drift.scenario_line - 1].strip().startswith("hint:")


@pytest.mark.command
def test_the_destination_repository_changed_and_the_password_never_printed(tmp_path: Path) -> None:
    page = edited(tmp_path, replace_on(549, "docker://quay.io/fatherlinux/fedora", "docker://quay.io/student/fedora"))
    result = lint(page)
    assert result.returncode == 1
    out = result.stdout
    assert (f"{page}:549: the page copies to docker://quay.io/student/fedora, but step 'registry-to-registry' "
            f"verifies registry_image.ref docker://quay.io/fatherlinux/fedora ({SCENARIO}:") in out
    assert "did you mean `skopeo copy docker://registry.fedoraproject.org/fedora docker://quay.io/student/fedora " \
           "--dest-creds ***`?" in out
    assert PASSWORD not in out + result.stderr
    assert PASSWORD[:12] not in out + result.stderr


def test_the_docker_and_storage_names_are_compared(tmp_path: Path) -> None:
    page = edited(tmp_path, lambda lines: replace_on(416, "containers-storage:fedora", "containers-storage:myfedora")(
        replace_on(502, "docker-daemon:registry.fedoraproject.org/fedora:latest",
                   "docker-daemon:registry.fedoraproject.org/fedora:38")(lines)))
    found = {(d.page_line, d.message) for d in drifts(page)}
    assert (416, "the page copies to containers-storage:myfedora, but step 'pull-to-storage' verifies "
                 "storage_image.name fedora") in found
    assert (502, "the page copies to docker-daemon:registry.fedoraproject.org/fedora:38, but step 'podman-to-docker' "
                 "verifies docker_image.name registry.fedoraproject.org/fedora:latest") in found


def test_a_scenario_without_bindings_encodes_nothing(tmp_path: Path) -> None:
    scenario = tmp_path / "plain.yaml"
    scenario.write_text("id: plain\ntitle: Plain\nsteps:\n  - id: a\n    title: A\n    verify:\n"
                        "      - command: {run: \"true\"}\n")
    found = drifts(COURSE_PAGE, scenario)
    assert [d.page_line for d in found] == [54, 98, 99, 416, 439, 459, 478, 485, 491, 502, 525, 549, 569]
    assert all(d.scenario_line == 1 for d in found)


# --- encodes: whole commands, placeholders for secrets ---------------------------------------------------


@pytest.mark.parametrize(("rendered", "command", "expected"), [
    ("skopeo inspect docker://r/fedora", "skopeo inspect docker://r/fedora", True),
    ("podman run x && podman inspect y", "podman inspect y", True),
    ("docker images | grep r.org/fedora", "docker images | grep r.org", False),
    ("sudo podman inspect y", "podman inspect y", False),
    ("skopeo copy a b --dest-creds ⟪secret:QUAY_CREDS⟫", "skopeo copy a b --dest-creds user:pw", True),
    ("skopeo copy a b --dest-creds ⟪secret:QUAY_CREDS⟫", "skopeo copy a b --dest-creds user pw", False),
    ("cd /x; make && make install", "make && make install", True),
    ("", "ls", False),
])
def test_encodes_whole_commands(rendered: str, command: str, expected: bool) -> None:
    assert encodes(rendered, command) is expected


# --- usage errors: exit 2 ---------------------------------------------------------------------------------


@pytest.mark.command
def test_usage_errors_exit_2_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("# Nothing to run\n")
    for page, message in ((tmp_path / "missing.md", "cannot read the page"), (empty, f"{empty}:1: no shell command")):
        result = lint(page)
        assert result.returncode == 2
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    two = subprocess.run([str(LABCHECK), "lint", "--page", str(COURSE_PAGE), str(SCENARIO), str(SCENARIO)],
                         capture_output=True, text=True)
    assert two.returncode == 2 and "one scenario file" in two.stderr
