"""Test layers: ``tests/unit`` (no network), ``tests/integration`` and ``tests/e2e`` (real
Cassandra 5.0 and the real Pub/Sub emulator, started once per session on test ports)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path)
        if "/tests/integration/" in path:
            item.add_marker(pytest.mark.integration)
        elif "/tests/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
