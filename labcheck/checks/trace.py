"""One check's run on a host: the commands it ran, what they printed, the result it ends with."""

from __future__ import annotations

from dataclasses import dataclass, field

from labcheck.checks.base import CheckContext, CheckResult, CommandOutput, excerpt, format_command

COMMAND_NOT_FOUND = 127  # what a POSIX shell exits with when the program is not on the PATH


@dataclass
class Trace:
    """Runs a check's commands through ctx and records them, then builds its CheckResult."""

    ctx: CheckContext
    check: str
    summary: str
    commands: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    output: str = ""

    def run(self, command: str, *args: str) -> CommandOutput:
        """ctx.run, recording the command line (without the env exports) and its output."""
        self.commands.append(format_command(command, *args))
        result = self.ctx.run(command, *args)
        self.output = "\n".join(part for part in (result.stdout.strip(), result.stderr.strip()) if part)
        return result

    def query(self, description: str) -> None:
        """Record a question the engine asks a registry from the checker's machine."""
        self.queries.append(description)

    def passed(self, *, expected: str | None = None, actual: str | None = None) -> CheckResult:
        return self._result(True, "", expected, actual)

    def failed(self, reason: str, *, expected: str | None = None, actual: str | None = None) -> CheckResult:
        return self._result(False, reason, expected, actual)

    def _result(self, passed: bool, reason: str, expected: str | None, actual: str | None) -> CheckResult:
        return CheckResult(
            check=self.check,
            passed=passed,
            summary=self.summary,
            expected=expected,
            actual=actual,
            reason=reason,
            commands=list(self.commands),
            output=excerpt(self.output),
            queries=list(self.queries),
        )


def missing_tool(result: CommandOutput, tool: str) -> str | None:
    """A student's reason when `tool` could not be started on the host, else None.

    >>> class Out: rc, stdout, stderr = 127, "", "sh: 1: docker: not found"
    >>> missing_tool(Out(), "docker")
    'docker is not installed on this host (or not on the PATH of the user the check runs as)'
    """
    if result.rc == COMMAND_NOT_FOUND or f"{tool}: not found" in result.stderr:
        return f"{tool} is not installed on this host (or not on the PATH of the user the check runs as)"
    return None


def last_line(text: str) -> str:
    """The last non-empty line of text: where tools put their error.

    >>> last_line("Error: a\\nError: b\\n\\n")
    'Error: b'
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
