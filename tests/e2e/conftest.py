"""The demo run, once for all end-to-end modules, and the tables read back after it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from ecom_shared.cassandra.session import cassandra_session
from tests.apps_tables import expected_from, read_tables
from tests.e2e.demo_run import DEMO_BUDGET_SECONDS, ORDERS, ReadBack, cassandra, run
from tests.infra import InfraUnderTest
from tests.manifest_stream import read_manifest


@pytest.fixture(scope="package")
async def demo(infra: InfraUnderTest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the quick-start command against the test infrastructure."""
    summary = tmp_path_factory.mktemp("demo") / "summary.json"
    code, output = await run(
        [
            sys.executable,
            "-m",
            "ecom_devtools.demo",
            "--orders",
            str(ORDERS),
            "--seed",
            "7",
            "--dir",
            str(infra.base_dir),
            "--cql-port",
            str(infra.cql_port),
            "--storage-port",
            str(infra.storage_port),
            "--jmx-port",
            str(infra.jmx_port),
            "--pubsub-port",
            str(infra.pubsub_port),
            "--json",
            str(summary),
        ],
        dict(os.environ),
        timeout=DEMO_BUDGET_SECONDS,
    )
    assert code == 0, output
    assert "PASSED" in output
    return {"summary": json.loads(summary.read_text()), "output": output}


@pytest.fixture(scope="package")
async def read_back(demo: dict[str, Any], infra: InfraUnderTest) -> ReadBack:
    """The manifest through :mod:`tests.manifest_stream` and :func:`expected_from`, the tables
    through CQL of the tests' own: nothing of ``ecom-verify``, whose PASSED the demo prints."""
    stream = read_manifest(Path(demo["summary"]["manifest"]))
    expected = expected_from(stream.orders, stream.payments)
    async with cassandra_session(cassandra(infra)) as session:
        rows, parked = await read_tables(session, cassandra(infra))
    return ReadBack(expected, rows, parked)
