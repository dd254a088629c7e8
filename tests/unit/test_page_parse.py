"""parse_page: the course page's shell commands in page order with file:line, and what the page documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from labcheck.page.model import PageError
from labcheck.page.parse import parse_page

COURSE_PAGE = Path(__file__).parent.parent.parent / "course" / "05-skopeo-moving-sharing.md"
PASSWORD = "5R4YX2LHHVB682OX232TMFSBGFT350IV70SBLDKU46LAFIY6HEGN4OYGJ2SCD4HI"
QUAY_COPY = ("skopeo copy docker://registry.fedoraproject.org/fedora docker://quay.io/fatherlinux/fedora "
             f"--dest-creds fatherlinux+fedora:{PASSWORD}")

EXPECTED_COMMANDS = [
    (54, "skopeo inspect docker://registry.fedoraproject.org/fedora"),
    (98, "podman run --name meta-data-container -id registry.fedoraproject.org/fedora bash"),
    (99, "podman inspect meta-data-container"),
    (416, "skopeo copy docker://registry.fedoraproject.org/fedora containers-storage:fedora"),
    (439, "skopeo copy docker://registry.fedoraproject.org/fedora dir:$HOME/fedora-skopeo"),
    (459, "ls -alh ~/fedora-skopeo"),
    (478, "yes|sudo rpm -ivh --nodeps --force https://download.docker.com/linux/centos/8/x86_64/stable/"
          "Packages/containerd.io-1.3.7-3.1.el8.x86_64.rpm"),
    (485, "sudo yum install -y docker-ce --nobest"),
    (491, "sudo systemctl enable --now docker"),
    (502, "skopeo copy containers-storage:registry.fedoraproject.org/fedora "
          "docker-daemon:registry.fedoraproject.org/fedora:latest"),
    (525, "docker images | grep registry.fedoraproject.org"),
    (549, QUAY_COPY),
    (569, "exit"),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def course():
    return parse_page(COURSE_PAGE)


# --- the real page ------------------------------------------------------------------------


def test_the_course_page_commands_in_page_order_with_their_lines(course) -> None:
    assert [(c.line, c.text) for c in course.commands] == EXPECTED_COMMANDS
    assert course.title == "5. Skopeo - Moving & Sharing"
    assert course.commands[0].where(course) == f"{COURSE_PAGE}:54"
    assert course.find("exit").section == "Moving Between Container Registries"


def test_the_remote_inspect_result_is_read_though_its_opening_brace_is_missing(course) -> None:
    result = course.find("skopeo inspect docker://registry.fedoraproject.org/fedora").result
    assert result.kind == "json" and result.label == "Result" and result.line == 61
    assert result.data["Labels"] == {"license": "MIT", "name": "fedora", "vendor": "Fedora Project", "version": "38"}
    assert (result.data["Architecture"], result.data["Os"]) == ("amd64", "linux")
    assert result.data["Env"] == ["DISTTAG=f38container", "FGC=f38", "container=oci"]
    assert result.data["RepoTags"] == ["34-aarch64", "40"]  # the page's `...` is left out
    assert result.key_lines["Labels.vendor"] == 73
    assert result.key_lines["Architecture"] == 76
    assert result.key_lines["Env.2"] == 84


def test_result_tabs_go_to_the_input_commands_by_number(course) -> None:
    run, inspect = course.commands[1], course.commands[2]
    assert run.result.kind == "text" and run.result.label == "Result #1"
    assert run.result.lines[0] == (105, "Trying to pull registry.fedoraproject.org/fedora:latest...")
    assert run.result.lines[4] == (109, "Writing manifest to image destination")
    assert inspect.result.kind == "json" and inspect.result.label == "Result #2"
    assert inspect.result.data[0]["Name"] == "meta-data-container"
    assert inspect.result.data[0]["Config"]["Labels"]["version"] == "38"
    assert inspect.result.key_lines["0.Config.Labels.name"] == 275
    assert inspect.result.key_lines["0.Config.Env.1"] == 258
    assert inspect.result.key_lines["0"] == 119


def test_text_results_drop_the_prefix_and_blank_lines(course) -> None:
    result = course.commands[4].result  # the dir: copy; its second line is a bare `# `
    assert [n for n, _ in result.lines] == [445, 447, 448, 449, 450]
    assert result.lines[1] == (447, "Copying blob 18ca996a454f done")


def test_output_lines_after_a_command_outside_tabs_are_its_result(course) -> None:
    ls = course.find("ls -alh ~/fedora-skopeo").result
    assert ls.kind == "text" and ls.label == "" and ls.line == 460
    assert ls.lines[-1] == (466, "-rw-r--r--. 1 root root   33 Sep 12 08:41 version")
    assert len(ls.lines) == 7
    rpm, yum = course.commands[6], course.commands[7]
    assert rpm.result.lines[-1] == (484, "   1:containerd.io-1.3.7-3.1.el8      ################################# [100%]")
    assert yum.result is None
    assert course.find("sudo systemctl enable --now docker").result.lines[0][0] == 492
    assert course.find("exit").result is None


def test_the_page_credentials_and_their_password(course) -> None:
    assert course.credentials == (f"fatherlinux+fedora:{PASSWORD}", PASSWORD)


# --- rules, on small pages -------------------------------------------------------------------


def test_fences_other_than_shell_hold_no_commands(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "\n".join([
        "# Title",                 # 1
        "```component VPCard",     # 2
        '{"title": "x"}',          # 3
        "```",                     # 4
        "```json",                 # 5
        '{"a": 1}',                # 6
        "```",                     # 7
        "```bash",                 # 8
        "echo one",                # 9
        "```",                     # 10
        "```shell",                # 11
        "echo two",                # 12
        "```",                     # 13
        "```python",               # 14
        "print(3)",                # 15
        "```",                     # 16
        "```sh:no-line-numbers",   # 17
        "echo four",               # 18
        "```",                     # 19
    ])))
    assert [(c.line, c.text) for c in page.commands] == [(9, "echo one"), (12, "echo two"), (18, "echo four")]
    assert page.title == "Title"


def test_comments_continuations_and_output_outside_tabs(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "\n".join([
        "## Setup",                     # 1
        "```sh",                        # 2
        "# a comment before any command",  # 3
        "podman run \\",                # 4
        "  --name web \\",              # 5
        "  nginx",                      # 6
        "# abc123",                     # 7
        "#",                            # 8
        "#   indented output",          # 9
        "",                             # 10
        "echo done",                    # 11
        "```",                          # 12
    ])))
    first, second = page.commands
    assert (first.line, first.text, first.section) == (4, "podman run --name web nginx", "Setup")
    assert first.result.lines == ((7, "abc123"), (9, "  indented output"))
    assert (second.line, second.text, second.result) == (11, "echo done", None)


def test_a_single_result_goes_to_the_last_input_command(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "\n".join([
        "::: tabs",            # 1
        "@tab:active Input",   # 2
        "```sh",               # 3
        "echo a",              # 4
        "echo b",              # 5
        "```",                 # 6
        "@tab Result",         # 7
        "```sh",               # 8
        "# b",                 # 9
        "```",                 # 10
        ":::",                 # 11
        "```sh",               # 12
        "echo after",          # 13
        "```",                 # 14
    ])))
    a, b, after = page.commands
    assert a.result is None
    assert b.result.label == "Result" and b.result.lines == ((9, "b"),)
    assert after.line == 13


def test_numbered_results_and_an_input_tab_that_is_not_active(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "\n".join([
        "::: tabs",      # 1
        "@tab Input",    # 2
        "```sh",         # 3
        "echo a",        # 4
        "echo b",        # 5
        "echo c",        # 6
        "```",           # 7
        "@tab Result #2",  # 8
        "```sh",         # 9
        "# b",           # 10
        "```",           # 11
        "@tab Result #1",  # 12
        "```sh",         # 13
        "# a",           # 14
        "```",           # 15
        ":::",           # 16
    ])))
    a, b, c = page.commands
    assert a.result.lines == ((14, "a"),) and a.result.label == "Result #1"
    assert b.result.lines == ((10, "b"),)
    assert c.result is None


def test_a_json_result_parsed_leniently_with_key_lines(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "\n".join([
        "::: tabs",                    # 1
        "@tab:active Input",           # 2
        "```sh",                       # 3
        "skopeo inspect docker://x",   # 4
        "```",                         # 5
        "@tab Result",                 # 6
        "```json",                     # 7
        '    "Labels": {',             # 8
        '        "a.b": "1",',         # 9
        '    },',                      # 10
        '    "List": [',               # 11
        "        ...",                 # 12
        '        {"k": true}',         # 13
        '        "z"',                 # 14
        "    ],",                      # 15
        '    "N": 3.5',                # 16
        "}",                           # 17
        "```",                         # 18
        ":::",                         # 19
    ])))
    result = page.commands[0].result
    assert result.data == {"Labels": {"a.b": "1"}, "List": [{"k": True}, "z"], "N": 3.5}
    assert result.key_lines == {"Labels": 8, "Labels.a.b": 9, "List": 11, "List.0": 13, "List.0.k": 13,
                                "List.1": 14, "N": 16}
    assert result.line == 8


def test_json_that_cannot_be_read_has_no_data(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "\n".join([
        "::: tabs", "@tab Input", "```sh", "cat x", "```", "@tab Result", "```json", "{ not json }", "```", ":::",
    ])))
    result = page.commands[0].result
    assert result.kind == "json" and result.data is None and result.key_lines == {}
    assert result.lines == ((8, "{ not json }"),)


def test_other_tabs_hold_commands_like_the_page_text(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "\n".join([
        "::: tabs", "@tab Fedora", "```sh", "dnf install skopeo", "```",
        "@tab Debian", "```sh", "apt install skopeo", "```", ":::",
    ])))
    assert [c.text for c in page.commands] == ["dnf install skopeo", "apt install skopeo"]


def test_a_console_block_with_prompts(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "\n".join([
        "```console", "$ podman images", "REPOSITORY  TAG", "$ echo hi", "hi", "```",
    ])))
    images, echo = page.commands
    assert (images.line, images.text) == (2, "podman images")
    assert images.result.lines == ((3, "REPOSITORY  TAG"),)
    assert echo.result.lines == ((5, "hi"),)


def test_credentials_in_every_form(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "\n".join([
        "```sh",
        "skopeo inspect --creds alice:pw1 docker://x",
        "skopeo copy --src-creds=bob:pw2 --dest-creds 'carol:pw 3' docker://x docker://y",
        "skopeo copy --dest-creds=tokenonly docker://x docker://y",
        "```",
    ])))
    assert page.credentials == ("alice:pw1", "pw1", "bob:pw2", "pw2", "carol:pw 3", "pw 3", "tokenonly")


def test_containers_inside_tabs_and_fences_inside_other_containers(tmp_path: Path) -> None:
    page = parse_page(write(tmp_path, "\n".join([
        "::: tip",            # 1
        "```sh",              # 2
        "echo in-tip",        # 3
        "```",                # 4
        ":::",                # 5
        "::: tabs",           # 6
        "@tab Input",         # 7
        "::: note",           # 8
        "```sh",              # 9
        "echo in-note",       # 10
        "```",                # 11
        ":::",                # 12
        "```sh",              # 13
        "echo in-tab",        # 14
        "```",                # 15
        "@tab Result",        # 16
        "```sh",              # 17
        "# ok",               # 18
        "```",                # 19
        ":::",                # 20
    ])))
    assert [(c.line, c.text) for c in page.commands] == [(3, "echo in-tip"), (10, "echo in-note"), (14, "echo in-tab")]
    assert page.commands[1].result is None
    assert page.commands[2].result.lines == ((18, "ok"),)


# --- errors: one line naming file:line, exit 2 ---------------------------------------------------


@pytest.mark.parametrize(("text", "line", "message"), [
    ("# Nothing to run\n\n```json\n{}\n```\n", 1, "no shell command on the page"),
    ("```sh\necho hi\n```\n\n```sh\necho unterminated\n", 5, "unterminated code block"),
    ("intro\n::: tabs\n@tab Input\n```sh\necho hi\n```\n", 2, "unterminated '::: tabs' container"),
    ("::: tabs\n@tab Input\n```sh\necho a\n```\n@tab Result #2\n```sh\n# x\n```\n:::\n", 6,
     "'Result #2' but the Input tab holds 1 command(s)"),
])
def test_a_page_that_cannot_be_read_is_one_line_naming_file_and_line(tmp_path: Path, text: str, line: int,
                                                                      message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PageError) as caught:
        parse_page(path)
    assert str(caught.value).startswith(f"{path}:{line}: {message}")
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_page_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(Exception) as caught:
        parse_page(tmp_path / "missing.md")
    assert caught.value.exit_code == 2
    assert "cannot read the page" in str(caught.value)
