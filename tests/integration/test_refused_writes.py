"""Cassandra answers reads but refuses every write for a while: the consumer waits, loses nothing.

On the authenticated node of :mod:`tests.secure_node`, the services' role may read and write one
keyspace. While orders keep coming, its MODIFY permission is revoked for longer than the
subscription's delivery limit would last without the gate (5 deliveries, a retry every
second), then granted again. Each refused write is a failure of Cassandra, not of the message:
the consumer must stop pulling and probe (a probe that writes, since reads still succeed)
until it may write again, so nothing healthy reaches ``dead-letter`` and every order is
stored. The module starts its own emulator beside that node, on a fixed port of the same
family, and needs neither the session's Cassandra nor its emulator.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import acsylla
import pytest

from ecom_devtools.local.drain import drain_now
from ecom_devtools.local.emulator import EmulatorConfig, PubSubEmulator
from ecom_order_consumer.handler import OrderHandler
from ecom_shared.cassandra.session import Session, cassandra_session, scan_by_token
from ecom_shared.errors import CASSANDRA
from ecom_shared.pubsub.client import OutgoingMessage
from ecom_shared.pubsub.provision import provision
from ecom_shared.runtime.consumer import Consumer
from ecom_shared.runtime.resources import Resources, open_resources
from ecom_shared.settings import PubSubSettings, ServiceSettings
from tests import ports
from tests.integration.conftest import FAST_CONSUMER, QUICK_PACING
from tests.polling import eventually, within
from tests.secure_node import SecureNode, secure_node
from tests.unit.shared.test_events import ORDER, body

pytestmark = pytest.mark.integration

EMULATOR_PORT = ports.REFUSED_WRITES_PUBSUB  # never the session emulator's
DELIVERY_ATTEMPTS = 5  # the least Pub/Sub allows
PACING = replace(QUICK_PACING, probe_seconds=1.0)  # probes every second
REFUSED_SECONDS = 35.0
"""Seven times what 5 deliveries a second apart last: without the gate, the messages pulled
while writes are refused would all have left for ``dead-letter`` well before the grant."""
BATCH, EVERY = 20, 0.25  # the load: up to 80 orders a second, before, during and after


@pytest.fixture(scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecureNode]:
    async with secure_node(tmp_path_factory.mktemp("refused-writes")) as started:
        yield started


@pytest.fixture(scope="module")
async def emulator(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    config = EmulatorConfig(tmp_path_factory.mktemp("pubsub"), port=EMULATOR_PORT)
    server = PubSubEmulator(config)
    server.start()
    try:
        await server.wait_ready(120)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PUBSUB_EMULATOR_HOST", server.host_port)
            yield server.host_port
    finally:
        server.stop()


class Orders:
    """Publishes ``BATCH`` new orders every ``EVERY`` seconds until stopped."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self.published: set[int] = set()

    async def run(self, stop: asyncio.Event) -> None:
        topic = self._resources.settings.pubsub.orders_topic
        while not stop.is_set():
            first = len(self.published) + 1
            ids = range(first, first + BATCH)
            messages = [OutgoingMessage(body(ORDER, order_id=i), {}) for i in ids]
            await self._resources.publisher.publish(topic, messages)
            self.published.update(ids)
            await asyncio.sleep(EVERY)


async def _grant(admin: Session, verb: str, role: str, keyspace: str) -> None:
    preposition = "TO" if verb == "GRANT" else "FROM"
    cql = f"{verb} MODIFY ON KEYSPACE {keyspace} {preposition} {role}"
    await admin.execute(acsylla.create_statement(cql))


async def _stored(admin: Session, settings: ServiceSettings) -> set[int]:
    c = settings.cassandra
    prepared = await admin.create_prepared(
        f"SELECT order_id FROM {c.keyspace}.{c.orders_table} "
        "WHERE token(order_id) >= ? AND token(order_id) <= ?"
    )
    rows = scan_by_token(admin, prepared, page_size=1000, segments=1)
    return {row.column_value("order_id") async for row in rows}


async def _service_settings(node: SecureNode, admin: Session) -> ServiceSettings:
    """Fresh names, provisioned by the superuser; a role that may read and write the keyspace."""
    tag = secrets.token_hex(5)
    role, password = f"svc_{tag}", f"svc-pw-{secrets.token_hex(12)}"
    pubsub = PubSubSettings.suffixed(
        tag,
        project_id="test-project",
        ack_deadline_seconds=10,
        max_delivery_attempts=DELIVERY_ATTEMPTS,
    )
    keyspace = f"refused_{tag}"
    await provision(ServiceSettings(pubsub=pubsub, cassandra=node.superuser(keyspace=keyspace)))
    for cql in (
        f"CREATE ROLE {role} WITH PASSWORD = '{password}' AND LOGIN = true",
        f"GRANT SELECT ON KEYSPACE {keyspace} TO {role}",
        f"GRANT MODIFY ON KEYSPACE {keyspace} TO {role}",
    ):
        await admin.execute(acsylla.create_statement(cql))
    service = node.settings(keyspace=keyspace, username=role, password=password)
    return ServiceSettings(pubsub=pubsub, cassandra=service)


def _consumer(resources: Resources) -> Consumer:
    settings = resources.settings
    return Consumer(
        resources.subscription(settings.pubsub.orders_subscription),
        OrderHandler(resources.orders, resources.dlq),
        resources.dead_letters,
        FAST_CONSUMER,
        ack_deadline_seconds=settings.pubsub.ack_deadline_seconds,
        probe=resources.probe,
        telemetry=resources.telemetry,
        pacing=PACING,
    )


async def _refuse_writes(admin: Session, resources: Resources) -> bool:
    """Revoke the role's MODIFY for ``REFUSED_SECONDS``, then grant it again; whether the
    consumer's gate closed (``ecom_dependency_up{dependency="cassandra"}`` at 0) meanwhile."""
    c = resources.settings.cassandra
    await _grant(admin, "REVOKE", str(c.username), c.keyspace)
    refused_at = time.monotonic()
    closed = await within(lambda: _cassandra_up(resources) == 0, REFUSED_SECONDS / 2)
    await asyncio.sleep(REFUSED_SECONDS - (time.monotonic() - refused_at))  # the outage itself
    await _grant(admin, "GRANT", str(c.username), c.keyspace)
    return closed


@pytest.mark.timeout(600)
async def test_refused_writes_close_the_gate_and_nothing_healthy_is_dead_lettered(
    node: SecureNode, emulator: str
) -> None:
    async with cassandra_session(node.superuser()) as admin:
        settings = await _service_settings(node, admin)
        async with open_resources(settings) as resources:
            consumer, orders = _consumer(resources), Orders(resources)
            stop, load_stop = asyncio.Event(), asyncio.Event()
            running = asyncio.create_task(consumer.run(stop))
            load = asyncio.create_task(orders.run(load_stop))
            await eventually(
                lambda: consumer.stats.acked >= 200, 60, what="orders flow before the refusal"
            )
            gate_closed = await _refuse_writes(admin, resources)
            alive_while_refused = not running.done()
            await asyncio.sleep(5)  # more orders after the grant
            load_stop.set()
            await load

            published, stored = orders.published, set[int]()

            async def all_stored() -> bool:
                stored.update(await _stored(admin, settings))
                return published <= stored

            await within(all_stored, 120.0)
            p = settings.pubsub
            dead = await drain_now(emulator, p.project_id, p.dead_letter_subscription)
            reopened = _cassandra_up(resources) == 1
            stop.set()
            await asyncio.wait_for(running, 30)

    reasons = consumer.stats.reasons
    seen = (
        f"published={len(published)} stored={len(published & stored)} "
        f"dead_lettered={len(dead)} gate_closed={gate_closed} reopened={reopened} "
        f"alive={alive_while_refused} reasons={reasons}"
    )
    assert dead == [], seen
    assert published - stored == set(), seen
    assert gate_closed, seen
    assert reopened, seen
    assert alive_while_refused, seen
    assert set(reasons) <= {"cassandra:CassErrorServerUnauthorized"}, seen


def _cassandra_up(resources: Resources) -> float | None:
    """``ecom_dependency_up{dependency="cassandra"}``: 0 while the consumer's gate is closed."""
    return resources.telemetry.registry.get_sample_value(
        "ecom_dependency_up", {"dependency": CASSANDRA}
    )
