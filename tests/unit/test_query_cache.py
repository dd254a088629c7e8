"""The run's shared registry answers: one question asked once, however many hosts ask it at once."""

from __future__ import annotations

import threading
import time

import pytest

from labcheck.checks.query_cache import QueryCache
from labcheck.errors import LabcheckError


def test_hosts_asking_at_once_share_one_answer() -> None:
    cache = QueryCache()
    calls: list[int] = []

    def ask() -> str:
        calls.append(1)
        time.sleep(0.2)  # the others arrive while the first is still asking
        return "sha256:aa"

    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(cache.get(("digest", "docker://r/f"), ask)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["sha256:aa"] * 8 and len(calls) == 1 and cache.asked == 1


def test_a_registry_error_is_an_answer_too_but_a_crash_is_not() -> None:
    cache = QueryCache()
    refused = LabcheckError("no such image")

    def missing() -> str:
        raise refused

    for _ in range(2):
        with pytest.raises(LabcheckError, match="no such image"):
            cache.get("k", missing)
    assert cache.asked == 1

    def crash() -> str:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        cache.get("c", crash)
    assert cache.get("c", lambda: "fine") == "fine"  # asked again


def test_invalidate_forgets_every_answer() -> None:
    cache = QueryCache()
    assert cache.get("k", lambda: 1) == 1
    assert cache.get("k", lambda: 2) == 1
    cache.invalidate()
    assert cache.get("k", lambda: 3) == 3
