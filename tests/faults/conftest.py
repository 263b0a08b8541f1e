"""Fixtures for the fault suite: a gate that releases reply functions held before their headers."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.faults import Gate
from tests.support.server import LoopbackServer


@pytest.fixture
def gate(server: LoopbackServer) -> Iterator[Gate]:
    # Depends on ``server`` so that it is opened first on teardown: a reply function still
    # holding its connection lets go before the server joins its threads.
    g = Gate()
    yield g
    g.open()
