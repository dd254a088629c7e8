"""An environment for the engine's calls: as options where the engine has them, else os.environ set
for the length of a call (the engine reads SSL_CERT_FILE, DOCKER_HOST, … there)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import ContextManager, Iterator, Mapping

from labcheck.engine.base.environment import options_with_environment
from labcheck.engine.base.options import SideOptions

# os.environ is one per process: calls that set it take turns (re-entrant for nested calls).
_LOCK = threading.RLock()


@contextlib.contextmanager
def scoped_environ(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ with env added while the block runs, restored afterwards."""
    if not env:
        yield
        return
    with _LOCK:
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def options_or_environ(options: SideOptions, env: Mapping[str, str]) -> tuple[SideOptions, ContextManager[None]]:
    """options carrying env (labcheck's own LABCHECK_* variables left out: the engine never reads
    them), and the context to run the engine call in: nothing, or scoped_environ(env) when env holds
    what only os.environ can carry."""
    engine_env = {key: value for key, value in env.items() if not key.startswith("LABCHECK_")}
    completed = options_with_environment(options, engine_env)
    if completed is None:
        return options, scoped_environ(env)
    return completed, contextlib.nullcontext()
