"""The quick-start demo run that the end-to-end modules share (:mod:`tests.e2e.conftest` runs
it once), and how to run a command of the product as a user does."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from ecom_shared.settings import CassandraSettings
from tests.apps_tables import Expected, Row
from tests.infra import InfraUnderTest

ORDERS: Final = 3000
# The demo run, with Cassandra's start when it comes first, gets DEMO_BUDGET_SECONDS; the per-test
# limit of a module that uses it (its first test pays for the fixture) must be above it, or the
# global 300 s of pyproject.toml cuts the run short before its own timeout can report it.
DEMO_BUDGET_SECONDS: Final = 600


async def run(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def cassandra(infra: InfraUnderTest) -> CassandraSettings:
    return CassandraSettings(contact_points=["127.0.0.1"], port=infra.cql_port)


def cassandra_env(infra: InfraUnderTest) -> dict[str, str]:
    """The variables that point a product command at the test Cassandra."""
    return {
        "ECOM_CASSANDRA__PORT": str(infra.cql_port),
        "ECOM_CASSANDRA__CONTACT_POINTS": '["127.0.0.1"]',
    }


@dataclass(frozen=True)
class ReadBack:
    """What the manifest says the tables must hold, by the tests' own rules, and the tables."""

    expected: Expected
    rows: dict[int, Row]
    parked: dict[tuple[int, int], Row]
