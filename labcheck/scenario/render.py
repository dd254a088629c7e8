"""Rendering a scenario's templates: sandboxed jinja2 with StrictUndefined, vars, profiles, secrets and the lab world."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import jinja2
import jinja2.sandbox

from labcheck.errors import ScenarioValueError, UsageError, read_named_file
from labcheck.labenv.userenv import ROOTLESS_CONF_VARIABLE
from labcheck.redact import REDACTOR, Redactor

# Names every template may use besides the scenario's vars.
BUILTIN_NAMES = frozenset({"home", "user", "host", "arch", "variant", "lab", "secret", "env", "profile"})


class SecretNotSet(UsageError):
    """secret('NAME') with NAME in neither the environment nor the secrets file."""


class NoLabWorld(UsageError):
    """lab.* used with no lab world running and no LABCHECK_* variables set."""


# What a scenario's variables can lack whatever the host: found before any host is checked. (A
# secret that is not set is not among them: only the steps that use it are left unchecked.)
HOST_INDEPENDENT_ERRORS = (NoLabWorld,)


class NeedsSecret(jinja2.StrictUndefined):
    """The value of a variable that needs a secret which is not set: a template that uses it raises
    the SecretNotSet, so only the steps that use the variable cannot be checked."""

    __slots__ = ()

    def __init__(self, error: SecretNotSet, name: str) -> None:
        # Every use of an undefined value raises _undefined_exception(message): here, the secret's error.
        super().__init__(name=name, exc=lambda message: error)  # type: ignore[arg-type]


def load_secrets_file(path: str | Path) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments ignored), as .env files have them."""
    secrets: dict[str, str] = {}
    lines = read_named_file(path, "--secrets-file").splitlines()
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            raise UsageError(f"{path}:{number}: expected KEY=VALUE")
        secrets[key.strip()] = value.strip().strip("'\"")
    return secrets


class LabInfo:
    """`lab.*` in templates: the lab world named by LABCHECK_* variables, else the default one.

    host: the lab world of that host, from its own variables only (a VM's lab world: nothing of this
    machine's); read_file reads a file there (the destination's credentials)."""

    def __init__(self, environ: Mapping[str, str], redactor: Redactor, *, host: str | None = None,
                 read_file: Callable[[str], str] | None = None) -> None:
        self._environ = environ
        self._redactor = redactor
        self._world = None
        self._host = host
        self._read_file = read_file

    def where(self) -> str | None:
        """Which lab world lab.* reads ("" never): LABCHECK_* variables or a state directory; None when none is there."""
        if self._host is not None:
            return f"the lab world of {self._host}" if self._environ.get("LABCHECK_SOURCE_REGISTRY") else None
        if self._environ.get("LABCHECK_SOURCE_REGISTRY"):
            return "the lab world of LABCHECK_SOURCE_REGISTRY"
        from labcheck.labenv.world import LabWorld

        world = LabWorld(self._environ.get("LABCHECK_STATE_DIR"))
        return f"the lab world in {world.state_dir}" if world.settings() else None

    def _lab_world(self):
        if self._host is not None:
            raise NoLabWorld(f"{self._host} has no lab world", hint="run 'labcheck lab up' there, or name its "
                             "state directory with LABCHECK_STATE_DIR in the host's inventory env")
        if self._world is None:
            from labcheck.labenv.world import LabWorld

            self._world = LabWorld(self._environ.get("LABCHECK_STATE_DIR"))
            if not self._world.settings():
                raise NoLabWorld("no lab world is running and LABCHECK_SOURCE_REGISTRY is not set",
                                 hint="run 'labcheck lab up', or eval \"$(labcheck lab env)\" "
                                      "for a lab world elsewhere")
        return self._world

    def _get(self, name: str) -> str:
        value = self._environ.get(name)
        return value if value else self._lab_world().env()[name]

    @property
    def source_registry(self) -> str:
        return self._get("LABCHECK_SOURCE_REGISTRY")

    @property
    def dest_registry(self) -> str:
        return self._get("LABCHECK_DEST_REGISTRY")

    @property
    def dest_creds_file(self) -> str:
        return self._get("LABCHECK_DEST_CREDS_FILE")

    @property
    def dest_creds(self) -> str:
        """The destination registry's `user:password`, marked secret."""
        path = self.dest_creds_file
        if self._read_file is not None:
            value = self._read_file(path).strip()
        elif Path(path).is_file() and not os.access(path, os.R_OK):
            value = ""
        else:
            value = read_named_file(path, "the lab's destination credentials").strip()
        if not value:  # a student not granted them: only the steps that use them wait
            raise SecretNotSet(f"the lab's destination credentials ({path}) are not readable by this user",
                               hint="a member of the lab's docker group may read them (gpasswd -a USER docker)")
        self._redactor.add(value)
        return value

    @property
    def env(self) -> dict[str, str]:
        """The variables `labcheck lab env` prints (what plain skopeo, podman and docker need)."""
        names = ("LABCHECK_SOURCE_REGISTRY", "LABCHECK_DEST_REGISTRY", "LABCHECK_DEST_CREDS_FILE", "DOCKER_HOST",
                 "SSL_CERT_FILE", "CONTAINERS_CONF", "CONTAINERS_REGISTRIES_CONF", "CONTAINERS_STORAGE_CONF")
        if self._host is not None:  # the host's own lab world, as its env.sh names it (a user's: no root store)
            return {n: v for n, v in self._environ.items() if v}
        if all(self._environ.get(n) for n in names):
            optional = ("LABCHECK_STATE_DIR", ROOTLESS_CONF_VARIABLE)
            return {n: self._environ[n] for n in (*names, *optional) if self._environ.get(n)}
        return self._lab_world().env()


# The longest string or list a template may build with `*`, and the largest exponent of `**`: a
# scenario from elsewhere must not exhaust the grader's memory or CPU.
MAX_REPEAT = 1_000_000
MAX_EXPONENT = 1_000


class TemplateTooCostly(jinja2.sandbox.SecurityError):
    """A template that would build a huge value."""


class ScenarioSandbox(jinja2.sandbox.SandboxedEnvironment):
    """jinja2's sandbox (no attribute starting with `_`, no unsafe callables, ranges capped), with
    repetition and powers bounded as well. Templates render on the grader's machine, whoever wrote them."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise TemplateTooCostly(f"an exponent above {MAX_EXPONENT} is not allowed in a template")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) \
                        and len(sequence) * count > MAX_REPEAT:
                    raise TemplateTooCostly(f"a template may not build more than {MAX_REPEAT} items with *")
        return super().call_binop(context, operator, left, right)


def unsafe_attributes(parsed: jinja2.nodes.Template) -> list[str]:
    """Attributes a template reads that the sandbox refuses (`lab.__class__`, `x['_y']`), found
    without rendering: the linter reports them at the template's line."""
    # find_all walks a chain outside in (`a.b.c` gives c, then b): reversed, names come as written.
    names = [node.attr for node in parsed.find_all(jinja2.nodes.Getattr)][::-1]
    names += [node.arg.value for node in parsed.find_all(jinja2.nodes.Getitem)
              if isinstance(node.arg, jinja2.nodes.Const) and isinstance(node.arg.value, str)]
    names += [node.args[0].value for node in parsed.find_all(jinja2.nodes.Filter)
              if node.name == "attr" and node.args and isinstance(node.args[0], jinja2.nodes.Const)
              and isinstance(node.args[0].value, str)]
    return list(dict.fromkeys(name for name in names if name.startswith("_")))


# One environment for every renderer: values (globals included) are passed at render time, so a
# compiled template serves every host. Compiling is what rendering costs: a class of 30 hosts
# renders the same few dozen strings for each host.
_JINJA = ScenarioSandbox(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@functools.lru_cache(maxsize=4096)
def compiled(text: str) -> jinja2.Template:
    """The template of text, compiled once per process (a syntax error is raised, and not kept)."""
    return _JINJA.from_string(text)


class Renderer:
    """Renders template strings with one set of values; every secret read is registered for redaction."""

    def __init__(self, values: Mapping[str, Any], *, environ: Mapping[str, str] | None = None,
                 secrets: Mapping[str, str] | None = None, redactor: Redactor = REDACTOR,
                 lab: LabInfo | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.secrets = dict(secrets or {})
        self.redactor = redactor
        self.globals: dict[str, Any] = {
            "secret": self.secret,
            "env": self.env,
            "lab": lab if lab is not None else LabInfo(self.environ, redactor),
        }
        self.values: dict[str, Any] = {**self.globals, **values}

    def secret(self, name: str) -> str:
        value = self.environ.get(name) or self.secrets.get(name)
        if not value:
            raise SecretNotSet(f"secret '{name}' is not set",
                               hint=f"export {name}=… or put {name}=… in a --secrets-file")
        self.redactor.add(value)
        return value

    def env(self, name: str, default: str | None = None) -> str:
        value = self.environ.get(name, default)
        if value is None:
            raise UsageError(f"environment variable {name} is not set")
        return value

    def render(self, text: str, *, where: str = "") -> str:
        where = where or "a template"
        try:
            return compiled(text).render(self.values)
        except UsageError:
            raise  # secret() or lab.* said what is missing
        except TemplateTooCostly as exc:
            raise ScenarioValueError(f"template error in {where}: {exc.message}") from None
        except jinja2.sandbox.SecurityError as exc:
            raise ScenarioValueError(f"template error in {where}: {exc.message}",
                                     hint="templates render in a sandbox: no attribute starting with '_'") from None
        except jinja2.UndefinedError as exc:
            raise ScenarioValueError(f"undefined variable in {where}: {exc.message}",
                                     hint="define it under vars, in the profile, or with --var NAME=VALUE") from None
        except jinja2.TemplateError as exc:
            raise ScenarioValueError(f"template error in {where}: {exc.message}") from None
        except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as exc:
            # An expression that fails for its values ({{ 1/0 }}, {{ 1 + 'a' }}): the scenario's mistake.
            raise ScenarioValueError(f"template error in {where}: {exc.__class__.__name__}: {exc}") from None

    def render_data(self, value: Any, *, where: str = "") -> Any:
        """Every string inside value rendered (keys are left as they are)."""
        if isinstance(value, str):
            return self.render(value, where=where) if ("{{" in value or "{%" in value) else value
        if isinstance(value, dict):
            return {k: self.render_data(v, where=f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_data(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
        return value


def resolve_vars(raw: Mapping[str, Any], base: Mapping[str, Any], make_renderer: Callable[[Mapping[str, Any]], Renderer]) -> dict[str, Any]:
    """Render vars that may refer to each other, in whatever order they resolve."""
    resolved: dict[str, Any] = dict(base)
    pending = dict(raw)
    while pending:
        progress = False
        last_error: UsageError | None = None
        for name in list(pending):
            value = pending[name]
            if not isinstance(value, str):
                resolved[name] = value
                del pending[name]
                progress = True
                continue
            try:
                resolved[name] = make_renderer(resolved).render(value, where=f"var '{name}'")
            except SecretNotSet as exc:
                resolved[name] = NeedsSecret(exc, name)  # fails the steps that use it, and only those
            except UsageError as exc:
                if any(f"'{other}'" in exc.message for other in pending if other != name):
                    last_error = exc
                    continue
                raise
            del pending[name]
            progress = True
        if not progress:
            assert last_error is not None
            raise UsageError(f"variables refer to each other in a cycle: {', '.join(pending)}")
    return resolved
