"""Registry answers remembered for the length of a run and shared by every host's checks.

A verify changes nothing in registries, so the same question (reference, credentials, options)
gets the same answer: asked once, whichever host asks first; the others wait for that answer
instead of asking too. A run that writes to registries invalidates the cache after each action.
"""

from __future__ import annotations

import threading
from typing import Callable, Hashable, TypeVar

from labcheck.errors import LabcheckError

T = TypeVar("T")


class _Answer:
    """One question's answer (or the LabcheckError it got), set once by the thread that asked."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.value: object = None
        self.error: BaseException | None = None


class QueryCache:
    """Thread-safe memo of registry answers: get(key, ask) asks at most once per key between invalidations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[Hashable, _Answer] = {}
        self.asked = 0  # questions that reached a registry (for tests and benchmarks)

    def get(self, key: Hashable, ask: Callable[[], T]) -> T:
        with self._lock:
            answer = self._answers.get(key)
            mine = answer is None
            if answer is None:
                answer = self._answers[key] = _Answer()
                self.asked += 1
        if mine:
            try:
                answer.value = ask()
            except LabcheckError as exc:  # the registry's answer (no such image, refused): the same for everyone
                answer.error = exc
            except BaseException as exc:  # not an answer: forget it, so a later question asks again
                answer.error = exc
                with self._lock:
                    if self._answers.get(key) is answer:
                        del self._answers[key]
                raise
            finally:
                answer.ready.set()
        else:
            answer.ready.wait()
        if answer.error is not None:
            raise answer.error
        return answer.value  # type: ignore[return-value]

    def invalidate(self) -> None:
        """Forget every answer (a registry may have changed)."""
        with self._lock:
            self._answers.clear()
