"""Shared fixtures: a real Mosquitto on a free loopback port, for tests marked ``broker``.

Any test that uses one of these fixtures is marked ``broker`` automatically, so
``pytest -m "not broker"`` runs everything that needs no Mosquitto.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peer.broker import Broker

_BROKER_FIXTURES = frozenset({"broker", "session_broker"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh broker for one test: nothing retained, free to stop and restart."""
    with Broker.start_sync(log_dir=tmp_path / "mosquitto") as running:
        yield running


@pytest.fixture(scope="session")
def session_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker shared by the session; tests must use distinct topics and must not stop it."""
    with Broker.start_sync(log_dir=tmp_path_factory.mktemp("mosquitto")) as running:
        yield running
