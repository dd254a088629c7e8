"""The transport registry: one object per name the reference parser knows, each naming itself."""

from __future__ import annotations

import pytest

from labcheck.engine.base.errors import UnsupportedError
from labcheck.engine.reference.parse import TRANSPORTS
from labcheck.engine.transports import NAMES, get_transport


def test_every_parsed_transport_is_registered_under_its_own_name() -> None:
    assert NAMES == TRANSPORTS
    for name in NAMES:
        assert get_transport(name).name == name


def test_an_unknown_transport_is_unsupported() -> None:
    with pytest.raises(UnsupportedError):
        get_transport("ostree")
