"""Test layers: ``tests/unit`` (the product's, no network), ``tests/integration`` and
``tests/e2e`` (real Cassandra 5.0 and the real Pub/Sub emulator, started once per session on
test ports), ``tests/faults`` (faults injected into the services as processes on the real
infrastructure, marked ``faults``), and ``tests/docker`` (Docker Compose on a real engine,
marked ``docker``), and ``tests/kubernetes`` (the Kubernetes manifests rendered with kustomize,
which Go builds from the Go module proxy on first use, and schema-checked; marked
``kubernetes``). ``tests/tools`` tests the developer tools, the fault suite's accounting and
the Markdown links; its modules that start real infrastructure mark themselves ``integration``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ecom_devtools.local.infra import started_infra
from tests.infra import InfraUnderTest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path)
        if "/tests/integration/" in path:
            item.add_marker(pytest.mark.integration)
        elif "/tests/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
        elif "/tests/faults/" in path:
            item.add_marker(pytest.mark.faults)
        elif "/tests/docker/" in path:
            item.add_marker(pytest.mark.docker)
        elif "/tests/kubernetes/" in path:
            item.add_marker(pytest.mark.kubernetes)


@pytest.fixture(scope="session")
async def infra(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InfraUnderTest]:
    base = Path(os.environ.get("ECOM_TEST_INFRA_DIR") or tmp_path_factory.mktemp("infra"))
    test_infra = InfraUnderTest.from_env(base)
    os.environ["PUBSUB_EMULATOR_HOST"] = test_infra.pubsub_host_port
    async with started_infra(
        base,
        test_infra.cql_port,
        test_infra.storage_port,
        test_infra.jmx_port,
        test_infra.pubsub_port,
    ):
        yield test_infra
