"""Process environment set for the length of a call (the engine reads SSL_CERT_FILE, DOCKER_HOST, … there)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator, Mapping

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
