"""`file`: a path on the host exists (or not), with the expected type, mode, owner and content."""

from __future__ import annotations

from labcheck.checks.base import CheckContext, CheckResult, check
from labcheck.checks.schema import TEXT_OR_LIST, as_list, params, templated
from labcheck.checks.trace import Trace, last_line

SCHEMA = params(
    {
        "path": {"type": "string", "minLength": 1},
        "exists": {"type": "boolean", "default": True},
        "is_directory": {"type": "boolean"},
        "mode": {"type": "string", "pattern": templated("^0?[0-7]{3,4}$"), "description": 'octal, e.g. "0600"'},
        "owner": {"type": "string", "minLength": 1, "description": "user name of the owner"},
        "contains": {**TEXT_OR_LIST, "description": "text the file contains (plain text, not a regex)"},
    },
    "path",
)


@check("file", SCHEMA)
def file(
    ctx: CheckContext,
    path: str,
    exists: bool = True,
    is_directory: bool | None = None,
    mode: str | None = None,
    owner: str | None = None,
    contains: str | list[str] | None = None,
) -> CheckResult:
    """A path on the host exists (or not), is a directory or not, has a mode, owner and content."""
    trace = Trace(ctx, "file", f"{path} exists" if exists else f"{path} does not exist")
    # %F: file type, %a: octal mode, %U: owner; -L follows symlinks as `test -e` does.
    result = trace.run("stat -L -c '%%F|%%a|%%U' -- %s", path)
    if result.rc != 0:
        if "No such file" not in result.stderr and "Not a directory" not in result.stderr:
            return trace.failed(f"cannot look at {path}: {last_line(result.stderr)}")
        if exists:
            return trace.failed(f"{path} does not exist", expected="exists", actual="missing")
        return trace.passed(expected="missing", actual="missing")
    if not exists:
        return trace.failed(f"{path} exists but should not", expected="missing", actual="exists")
    kind, actual_mode, actual_owner = result.stdout.strip().split("|", 2)
    if is_directory is not None and (kind == "directory") != is_directory:
        want = "a directory" if is_directory else "not a directory"
        return trace.failed(f"{path} is a {kind}, expected {want}", expected=want, actual=kind)
    if mode is not None and int(mode, 8) != int(actual_mode, 8):
        return trace.failed(f"{path} has mode {int(actual_mode, 8):04o}, expected {int(mode, 8):04o}",
                            expected=f"mode {int(mode, 8):04o}", actual=f"mode {int(actual_mode, 8):04o}")
    if owner is not None and owner != actual_owner:
        return trace.failed(f"{path} belongs to {actual_owner}, expected {owner}",
                            expected=f"owner {owner}", actual=f"owner {actual_owner}")
    for text in as_list(contains):
        found = trace.run("grep -qF -e %s -- %s", text, path)
        if found.rc == 1:
            return trace.failed(f"{path} does not contain {text!r}", expected=f"contains {text!r}",
                                actual="not found")
        if found.rc != 0:
            return trace.failed(f"cannot read {path}: {last_line(found.stderr)}")
    actual = f"{kind}, mode {int(actual_mode, 8):04o}, owner {actual_owner}"
    return trace.passed(expected="exists", actual=actual)
