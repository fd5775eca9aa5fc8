"""The store boundary: each of the driver's errors becomes the pipeline's own, the policy judges
it by its attributes, and the gate reopens only once Cassandra takes a write again."""

from __future__ import annotations

import asyncio
from typing import Any

import acsylla
import pytest

from ecom_shared.cassandra.session import execute
from ecom_shared.cassandra.store import StoreProbe
from ecom_shared.errors import CASSANDRA, StoreUnavailable
from ecom_shared.observability.health import Telemetry
from ecom_shared.policy import Action, decide
from ecom_shared.runtime.backoff import Backoff
from ecom_shared.runtime.gate import DependencyGate
from ecom_shared.settings import CassandraSettings
from tests.polling import eventually
from tests.unit.shared.observability.test_metrics import reported_up

CANNOT_TAKE_IT_NOW = {
    # no connection, or no TLS session
    "CassExceptionConnectionError",
    "CassErrorLibNoHostsAvailable",
    "CassErrorLibUnableToConnect",
    "CassErrorLibHostResolution",
    "CassErrorLibUnableToSetKeyspace",
    "CassErrorLibWriteError",
    "CassErrorLibNoStreams",
    "CassErrorSourceSsl",
    "CassErrorSslInvalidCert",
    "CassErrorSslInvalidPrivateKey",
    "CassErrorSslNoPeerCert",
    "CassErrorSslInvalidPeerCert",
    "CassErrorSslIdentityMismatch",
    "CassErrorSslProtocolError",
    "CassErrorSslClosed",
    # too slow, too busy, too few replicas, not ready
    "CassErrorLibRequestQueueFull",
    "CassErrorLibRequestTimedOut",
    "CassErrorServerUnavailable",
    "CassErrorServerOverloaded",
    "CassErrorServerIsBootstrapping",
    "CassErrorServerWriteTimeout",
    "CassErrorServerReadTimeout",
    # the replicas or the server failed the request: a disk full, a corrupt file, a bug of theirs
    "CassErrorServerWriteFailure",
    "CassErrorServerReadFailure",
    "CassErrorServerServerError",
    # a role or permission taken away while running
    "CassErrorServerUnauthorized",
    "CassErrorServerBadCredentials",
}
"""What the error policy must treat as "Cassandra cannot take this request now". Every other
driver error is a statement or value refused (a bug, or a schema the code does not match)."""


class Refusing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def execute(self, statement: object) -> None:
        raise self.error


@pytest.mark.parametrize("name", acsylla.errors.__all__)
async def test_each_driver_error_is_judged_by_what_the_store_raises(name: str) -> None:
    driver_error = getattr(acsylla.errors, name)(f"{name} says why")
    with pytest.raises(Exception) as raised:  # noqa: PT011 - which one is the point
        await execute(Refusing(driver_error), object())
    decision = decide(raised.value)
    assert decision.action is Action.RETRY  # never dead-lettered by the application
    if name in CANNOT_TAKE_IT_NOW:
        assert isinstance(raised.value, StoreUnavailable)
        assert raised.value.__cause__ is driver_error
        assert f"{name} says why" in str(raised.value)
        assert (decision.dependency, decision.reason) == (CASSANDRA, f"cassandra:{name}")
    else:
        assert raised.value is driver_error  # as the driver raised it
        assert (decision.dependency, decision.reason) == (None, f"unexpected:{name}")


def test_the_policy_reads_the_error_not_a_list_of_driver_classes() -> None:
    # A driver error that did not come through the store is not taken for an outage.
    assert decide(acsylla.errors.CassErrorServerUnavailable("raw")).dependency is None
    assert decide(StoreUnavailable("down")).reason == "StoreUnavailable"


class Statement:
    def __init__(self, cql: str, values: list[Any]) -> None:
        self.cql, self.values = cql, values

    def set_is_idempotent(self, value: bool) -> None:
        assert value


class Prepared:
    def __init__(self, cql: str) -> None:
        self.cql = cql

    def bind(self, values: list[Any]) -> Statement:
        return Statement(self.cql, values)


class ReadOnlyNode:
    """Answers every read; refuses writes, as a node does once the role lost MODIFY."""

    def __init__(self) -> None:
        self.refuse_writes = True
        self.executed: list[tuple[str, list[Any]]] = []

    async def create_prepared(self, cql: str) -> Prepared:
        return Prepared(cql)

    async def execute(self, statement: Statement) -> None:
        self.executed.append((statement.cql, statement.values))
        if self.refuse_writes and not statement.cql.startswith("SELECT"):
            raise acsylla.errors.CassErrorServerUnauthorized(
                "Unauthorized: User svc has no MODIFY permission on <table ks.order_payments>"
            )


async def test_the_probe_writes_to_both_tables_a_key_no_event_has_then_reads() -> None:
    node = ReadOnlyNode()
    node.refuse_writes = False
    probe = await StoreProbe.prepare(node, CassandraSettings(keyspace="ks"))
    await probe()
    assert node.executed == [
        ("DELETE FROM ks.order_payments USING TIMESTAMP 1 WHERE order_id = ?", [0]),
        (
            "DELETE FROM ks.payments_dlq USING TIMESTAMP 1 WHERE order_id = ? AND payment_id = ?",
            [0, 0],
        ),
        ("SELECT order_id FROM ks.order_payments WHERE order_id = ?", [0]),
    ]


async def test_the_gate_reopens_only_once_the_probe_can_write() -> None:
    node = ReadOnlyNode()
    probe = await StoreProbe.prepare(node, CassandraSettings(keyspace="ks"))
    with pytest.raises(StoreUnavailable, match="CassErrorServerUnauthorized"):
        await probe()
    telemetry = Telemetry.create()
    gate = DependencyGate({CASSANDRA: probe}, Backoff(0.01, 0.02), telemetry.health)
    gate.close(CASSANDRA, "cassandra:CassErrorServerUnauthorized")
    stop = asyncio.Event()
    waiting = asyncio.create_task(gate.wait_open(stop))
    await eventually(lambda: len(node.executed) >= 5)
    assert not waiting.done()  # reads still answer, and that is not enough
    assert not reported_up(telemetry.health, CASSANDRA)
    node.refuse_writes = False
    assert await asyncio.wait_for(waiting, 5)  # open
    assert reported_up(telemetry.health, CASSANDRA)
