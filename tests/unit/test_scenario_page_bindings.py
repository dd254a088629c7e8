"""A scenario's `page:` bindings: the page it encodes, the commands the lab world replaces, each step's page commands."""

from __future__ import annotations

from pathlib import Path

from labcheck.scenario.lint import lint_text
from labcheck.scenario.model import PageRef, load_scenario

ROOT = Path(__file__).parent.parent.parent
SCENARIO = ROOT / "scenarios" / "skopeo-moving-sharing.yaml"

MINIMAL = """\
id: bound
title: Bound
page:
  path: lab/page.md
  replaced:
    - command: sudo systemctl enable --now docker
      reason: the lab world runs dockerd
steps:
  - id: a
    title: A
    page:
      - docker inspect --format '{{.Id}}' fedora
      - docker images
    verify:
      - command: {run: "true"}
"""


def test_the_skopeo_scenario_binds_every_step_to_the_course_page() -> None:
    scenario = load_scenario(SCENARIO)
    assert scenario.page is not None
    assert scenario.page.path.resolve() == (ROOT / "course" / "05-skopeo-moving-sharing.md").resolve()
    assert [r.command for r in scenario.page.replaced][1:] == [
        "sudo yum install -y docker-ce --nobest", "sudo systemctl enable --now docker", "exit"]
    assert all(r.reason for r in scenario.page.replaced)
    assert all(step.page for step in scenario.steps)
    lines = SCENARIO.read_text().splitlines()
    for step in scenario.steps:
        for ref in step.page:
            assert lines[ref.line - 1].strip() == f"- {ref.command}"
    for replaced in scenario.page.replaced:
        assert replaced.command in lines[replaced.line - 1]


def test_bindings_are_kept_with_their_lines_and_page_commands_are_not_templates(tmp_path: Path) -> None:
    path = tmp_path / "bound.yaml"
    path.write_text(MINIMAL)
    assert lint_text(MINIMAL, str(path)) == []  # `{{.Id}}` is docker's template, quoted from the page
    scenario = load_scenario(path)
    assert scenario.page.path == tmp_path / "lab" / "page.md"
    assert scenario.page.line == 3
    assert [(r.command, r.line) for r in scenario.page.replaced] == [("sudo systemctl enable --now docker", 6)]
    assert scenario.steps[0].page == (PageRef("docker inspect --format '{{.Id}}' fedora", 12),
                                      PageRef("docker images", 13))


def test_a_scenario_without_page_bindings_has_none(tmp_path: Path) -> None:
    text = "\n".join(line for line in MINIMAL.splitlines() if "page" not in line and "docker" not in line
                     and "reason" not in line and "replaced" not in line) + "\n"
    path = tmp_path / "plain.yaml"
    path.write_text(text)
    scenario = load_scenario(path)
    assert scenario.page is None and scenario.steps[0].page == ()


def test_malformed_bindings_are_lint_problems() -> None:
    text = MINIMAL.replace("      reason: the lab world runs dockerd\n", "      why: the lab world runs dockerd\n")
    text = text.replace("  path: lab/page.md\n", "")
    text = text.replace("    page:\n      - docker inspect --format '{{.Id}}' fedora\n      - docker images\n",
                        "    page: docker images\n")
    messages = [(p.line, p.message) for p in lint_text(text, "s.yaml")]
    assert (4, "page is missing 'path'") in messages
    assert (5, "page.replaced.0 is missing 'reason'") in messages
    assert (6, "unknown key 'why' in page.replaced.0; allowed: command, reason") in messages
    assert (10, "step 'a' page should be a list, not a string") in messages
