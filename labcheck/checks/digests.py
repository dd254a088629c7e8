"""Whether an image is "the same" as a source reference's, and why not, in a student's words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from labcheck.checks.base import CheckContext, PlatformDigest, PlatformQueries
from labcheck.checks.engine_queries import EngineQueries
from labcheck.checks.platforms import host_platform, pick_instance
from labcheck.checks.trace import Trace
from labcheck.engine.base.errors import AuthenticationError, ImageNotFoundError
from labcheck.engine.base.options import Credentials
from labcheck.errors import LabcheckError


@dataclass(frozen=True)
class SourceDigests:
    """The digests an exact copy of ref may have.

    Copying a list without --all keeps one instance, the one for the platform of the host that
    ran the tool (uname -m there); copying with --all (or a single image) keeps the top digest.
    """

    ref: str
    top: str
    instances: tuple[PlatformDigest, ...]
    platform: str  # the host's

    @property
    def host_instance(self) -> PlatformDigest | None:
        """The image of a list the host's tools copy; None for a single image (or an engine that cannot tell)."""
        if len(self.instances) == 1 and self.instances[0].digest == self.top:
            return None
        return pick_instance(list(self.instances), self.platform)

    def accepted(self) -> set[str]:
        instance = self.host_instance
        return {self.top} | ({instance.digest} if instance else set())

    def accepts(self, digests: Iterable[str]) -> bool:
        return bool(self.accepted() & set(digests))

    def expected(self) -> str:
        """e.g. "sha256:b10f… (the list) or sha256:d2c3… (its linux/amd64 image)"."""
        instance = self.host_instance
        if instance is None:
            return self.top
        return f"{self.top} (the list) or {instance.digest} (its {instance.platform} image)"

    def mismatch(self, what: str, actual: str) -> str:
        """Why `what`, holding digest actual, is not a copy of ref."""
        for other in self.instances:
            if other.digest == actual:
                return (f"{what} holds the {other.platform} image of {self.ref}, but this host is "
                        f"{self.platform}: copy it again without --override-arch/--override-os")
        return f"{what} holds another image than {self.ref} ({actual}): copy {self.ref} again"


def source_digests(trace: Trace, ref: str, creds: str | None) -> SourceDigests:
    """Ask the engine for ref's digests and the host for its platform; LabcheckError when the engine cannot."""
    engine = trace.ctx.engine
    trace.query(f"manifest digest and platforms of {ref}")
    top = engine.manifest_digest(ref, creds=creds)
    instances = tuple(platform_queries(trace.ctx).instances(ref, creds=creds))
    return SourceDigests(ref, top, instances, host_platform(trace))


def platform_queries(ctx: CheckContext) -> PlatformQueries:
    """ctx.engine when it can list platforms, else labcheck's engine with the same env (as the runner's driver)."""
    if isinstance(ctx.engine, PlatformQueries):
        return ctx.engine
    return EngineQueries(env=dict(ctx.env))


def registry_problem(exc: LabcheckError, ref: str, creds: str | None) -> str:
    """A student's reason for an engine error about ref (never showing a password).

    >>> registry_problem(AuthenticationError("401"), "docker://q/f", "alice:secret")
    'the registry refused the credentials of user alice for docker://q/f: check the user name and password'
    """
    if isinstance(exc, AuthenticationError):
        if not creds:
            return f"the registry asks for credentials to read {ref}, and none were given"
        user = Credentials.parse(creds).username
        return f"the registry refused the credentials of user {user} for {ref}: check the user name and password"
    if isinstance(exc, ImageNotFoundError):
        return f"there is no image at {ref}"
    return f"could not read {ref}: {exc.message}"
