"""Each service's behaviour on the real emulator and real Cassandra 5.0."""

from __future__ import annotations

import asyncio
import json
import os
import random
import zlib
from datetime import UTC, datetime
from typing import Any

import acsylla

from ecom_devtools.local.drain import Pulled, drain_now
from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_order_consumer.handler import OrderHandler
from ecom_payment_consumer.handler import PaymentHandler
from ecom_producer.malformed import _KINDS, malformed_kinds, malformed_message
from ecom_shared.clock import utc_now
from ecom_shared.events import EventType, Order, Payment, parse_event
from ecom_shared.pubsub.client import OutgoingMessage, ReceivedMessage
from ecom_shared.runtime.resources import Resources
from ecom_shared.settings import ServiceSettings
from ecom_shared.versions import order_version_micros, payment_version_micros
from tests.integration.conftest import RunConsumer, acked, publish, send_and_wait
from tests.polling import eventually
from tests.unit.shared.test_events import body

ROW_COLUMNS = (
    "order_id, customer_id, item, quantity, shipping_address, order_status, order_created_at, "
    "order_version_at, order_ingested_at, payment_id, payment_method, card_last_four, "
    "payment_status, paid_at, payment_ingested_at, payment_source"
)
ORDER: dict[str, object] = {
    "order_id": 1,
    "customer_id": 2,
    "item": "Mug",
    "quantity": 3,
    "price": 19.99,
    "shipping_address": "1 Main St",
    "order_status": "Pending",
    "creation_date": "2026-01-01",
}
PAYMENT: dict[str, object] = {
    "payment_id": 10,
    "order_id": 1,
    "payment_method": "Credit Card",
    "card_last_four": "4242",
    "payment_status": "Completed",
    "payment_datetime": "2026-01-01T10:05:00+02:00",
}
ORDER_ATTRS: dict[str, str] = {}  # the apps publish no attributes
PAYMENT_ATTRS: dict[str, str] = {}


async def row(res: Resources, order_id: int) -> dict[str, Any] | None:
    c = res.settings.cassandra
    # Money is read as text: acsylla cannot decode a CQL decimal (see
    # ecom_shared.cassandra.cqltypes), and CAST shows exactly what any other client sees.
    prepared = await res.cql.create_prepared(
        f"SELECT {ROW_COLUMNS}, CAST(price AS text) AS price "
        f"FROM {c.keyspace}.{c.orders_table} WHERE order_id = ?"
    )
    found = (await res.cql.execute(prepared.bind([order_id]))).first()
    return None if found is None else found.as_dict()


async def dlq_rows(res: Resources) -> list[dict[str, Any]]:
    c = res.settings.cassandra
    result = await res.cql.execute(
        acsylla.create_statement(f"SELECT * FROM {c.keyspace}.{c.dlq_table}")
    )
    return [r.as_dict() for r in result]


async def drain(res: Resources, subscription: str, expect: int) -> list[Pulled]:
    """Take what the subscription holds until ``expect`` messages came; fail if more come."""
    got: list[Pulled] = []
    host = os.environ["PUBSUB_EMULATOR_HOST"]

    async def enough() -> bool:
        got.extend(await drain_now(host, res.settings.pubsub.project_id, subscription))
        return len(got) >= expect

    await eventually(enough)
    extra = await drain_now(host, res.settings.pubsub.project_id, subscription)
    assert extra == [], f"{len(extra)} unexpected messages on {subscription}"
    return got


def payment_handler(res: Resources) -> PaymentHandler:
    return PaymentHandler(
        res.orders, res.dlq, res.publisher, res.settings.pubsub.dlq_payments_topic
    )


async def test_orders_are_stored_with_event_time_as_write_timestamp(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    p = settings.pubsub
    await publish(
        resources,
        p.orders_topic,
        [body(ORDER, order_id=i, updated_at="2026-01-01T10:00:00Z") for i in (1, 2, 3)],
        ORDER_ATTRS,
    )
    async with run_consumer(p.orders_subscription, OrderHandler(resources.orders, resources.dlq)):
        await eventually(lambda: _has_rows(resources, [1, 2, 3]))
    stored = await row(resources, 2)
    assert stored is not None
    assert (stored["item"], stored["quantity"], stored["price"]) == ("Mug", 3, "19.99")
    c = settings.cassandra
    statement = acsylla.create_statement(
        f"SELECT writetime(order_status) AS ts FROM {c.keyspace}.{c.orders_table} "
        "WHERE order_id = 2"
    )
    ts = (await resources.cql.execute(statement)).first().as_dict()["ts"]
    assert ts // 1000 == 1_767_261_600_000  # 2026-01-01T10:00:00Z in milliseconds
    sent = body(ORDER, order_id=2, updated_at="2026-01-01T10:00:00Z")
    assert ts % 1000 == zlib.crc32(sent) % 1000  # the body's tie-breaker


async def _has_rows(res: Resources, ids: list[int]) -> bool:
    return all([await row(res, i) is not None for i in ids])


async def test_older_order_version_delivered_after_a_newer_one_does_not_win(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    p = settings.pubsub
    newer = body(
        ORDER, order_status="Shipped", shipping_address="New", updated_at="2026-01-02T00:00:00Z"
    )
    older = body(
        ORDER, order_status="Pending", shipping_address="Old", updated_at="2026-01-01T00:00:00Z"
    )
    async with run_consumer(
        p.orders_subscription, OrderHandler(resources.orders, resources.dlq)
    ) as consumer:
        await send_and_wait(resources, consumer, p.orders_topic, [newer], ORDER_ATTRS)
        await send_and_wait(resources, consumer, p.orders_topic, [older], ORDER_ATTRS)
    stored = await row(resources, 1)
    assert stored is not None
    assert (stored["order_status"], stored["shipping_address"]) == ("Shipped", "New")


async def test_order_redelivered_after_its_payment_keeps_the_payment(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    p = settings.pubsub
    async with run_consumer(
        p.orders_subscription, OrderHandler(resources.orders, resources.dlq)
    ) as orders:
        await send_and_wait(resources, orders, p.orders_topic, [body(ORDER)], ORDER_ATTRS)
        async with run_consumer(p.payments_subscription, payment_handler(resources)) as payments:
            await send_and_wait(
                resources, payments, p.payments_topic, [body(PAYMENT)], PAYMENT_ATTRS
            )
        await send_and_wait(
            resources, orders, p.orders_topic, [body(ORDER)] * 3, ORDER_ATTRS
        )  # redeliveries
    stored = await row(resources, 1)
    assert stored is not None
    assert (stored["payment_id"], stored["payment_source"]) == (10, "stream")
    assert stored["order_status"] == "Pending"


async def test_payment_before_order_parks_and_its_order_completes_it_at_once(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    p = settings.pubsub
    async with run_consumer(p.payments_subscription, payment_handler(resources)) as payments:
        await send_and_wait(resources, payments, p.payments_topic, [body(PAYMENT)], PAYMENT_ATTRS)
    parked = await dlq_rows(resources)
    assert [(r["order_id"], r["payment_id"]) for r in parked] == [(1, 10)]
    [announced] = await drain(resources, p.dlq_payments_subscription, 1)
    assert json.loads(announced.data)["payment_id"] == 10

    reconciler = Reconciler(resources.orders, resources.dlq, WorkerSettings(token_segments=4))
    first = await reconciler.run_pass()
    assert (first.reconciled, first.waiting) == (0, 1)  # its order has not come yet
    assert (await dlq_rows(resources))[0]["attempts"] == 1

    handler = OrderHandler(resources.orders, resources.dlq)
    async with run_consumer(p.orders_subscription, handler) as orders:
        await send_and_wait(resources, orders, p.orders_topic, [body(ORDER)], ORDER_ATTRS)
    stored = await row(resources, 1)
    assert stored is not None
    assert (stored["payment_id"], stored["payment_source"], stored["card_last_four"]) == (
        10,
        "order",
        "4242",
    )
    assert await dlq_rows(resources) == []
    second = await reconciler.run_pass()
    assert (second.scanned, second.reconciled, second.waiting) == (0, 0, 0)


async def store_orders_only(res: Resources, count: int) -> None:
    """Write orders 1..count the way the order consumer does, without its look at the DLQ:
    what the worker sees when that look failed or raced."""
    for order_id in range(1, count + 1):
        data = body(ORDER, order_id=order_id)
        order = parse_event(Order, data, ORDER_ATTRS)
        version = order_version_micros(order, utc_now(), data)
        await res.orders.upsert_order(order, version, utc_now())


async def test_times_sent_with_an_offset_are_stored_as_the_same_instant(
    resources: Resources,
) -> None:
    # Events keep the offset they were sent with; what is stored must be the instant.
    data = body(ORDER, creation_date="2026-01-01T12:00:00+02:00")
    order = parse_event(Order, data, None)
    payment = parse_event(Payment, body(PAYMENT, order_id=2), None)  # 10:05+02:00
    await resources.orders.upsert_order(
        order, order_version_micros(order, utc_now(), data), utc_now()
    )
    paid = payment.model_copy(update={"order_id": 1})
    version = payment_version_micros(paid, utc_now())
    await resources.orders.set_payment(paid, version, "stream", utc_now())
    await resources.dlq.park(payment, utc_now(), utc_now())
    stored = await row(resources, 1)
    assert stored is not None
    assert stored["order_created_at"] == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert stored["paid_at"] == datetime(2026, 1, 1, 8, 5, tzinfo=UTC)
    [parked] = await dlq_rows(resources)
    assert parked["paid_at"] == datetime(2026, 1, 1, 8, 5, tzinfo=UTC)


async def test_the_worker_completes_what_the_order_consumer_left_parked(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    p = settings.pubsub
    async with run_consumer(p.payments_subscription, payment_handler(resources)) as payments:
        await send_and_wait(resources, payments, p.payments_topic, [body(PAYMENT)], PAYMENT_ATTRS)
    await store_orders_only(resources, 1)
    report = await Reconciler(resources.orders, resources.dlq, WorkerSettings()).run_pass()
    assert (report.reconciled, report.waiting) == (1, 0)
    stored = await row(resources, 1)
    assert stored is not None
    assert (stored["payment_id"], stored["payment_source"]) == (10, "dlq")
    assert await dlq_rows(resources) == []


async def test_duplicates_change_nothing(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    p = settings.pubsub
    orders = [
        body(ORDER, order_id=i, item=f"item {i}", updated_at="2026-01-01T11:00:00Z")
        for i in range(1, 21)
    ]
    pays = [body(PAYMENT, order_id=i, payment_id=i * 10) for i in range(1, 21)]
    async with run_consumer(
        p.orders_subscription, OrderHandler(resources.orders, resources.dlq)
    ) as oc:
        await send_and_wait(resources, oc, p.orders_topic, orders, ORDER_ATTRS)
        async with run_consumer(p.payments_subscription, payment_handler(resources)) as pc:
            await send_and_wait(resources, pc, p.payments_topic, pays, PAYMENT_ATTRS)
            before = [await _order_and_payment(resources, i) for i in range(1, 21)]
            await publish(resources, p.payments_topic, pays, PAYMENT_ATTRS)
            await publish(resources, p.orders_topic, orders, ORDER_ATTRS)
            await eventually(lambda: acked(pc, 40))
        await eventually(lambda: acked(oc, 40))
    after = [await _order_and_payment(resources, i) for i in range(1, 21)]
    assert after == before
    assert await dlq_rows(resources) == []


async def test_a_redelivered_order_keeps_its_publish_time_version(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    """Without ``updated_at`` the version is the publish time, which a redelivery keeps."""
    p = settings.pubsub
    seen: list[ReceivedMessage] = []
    store = OrderHandler(resources.orders, resources.dlq)

    async def fail_first_delivery(message: ReceivedMessage) -> None:
        seen.append(message)
        await store(message)
        if len(seen) == 1:
            raise RuntimeError("crash after the write, before the ack")

    async with run_consumer(p.orders_subscription, fail_first_delivery) as consumer:
        await send_and_wait(resources, consumer, p.orders_topic, [body(ORDER)], ORDER_ATTRS)
    assert len(seen) == 2
    assert seen[0].message_id == seen[1].message_id
    assert seen[0].publish_time == seen[1].publish_time
    stored = await row(resources, 1)
    assert stored is not None
    assert stored["order_version_at"] == seen[0].publish_time.replace(
        microsecond=seen[0].publish_time.microsecond // 1000 * 1000
    )


async def _order_and_payment(res: Resources, order_id: int) -> dict[str, Any]:
    stored = await row(res, order_id)
    assert stored is not None
    # Ingestion times record when the newest version was last written; everything else is data.
    return {k: v for k, v in stored.items() if not k.endswith("_ingested_at")}


async def test_bad_input_lands_on_dead_letter_and_nowhere_else(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    p = settings.pubsub
    bad = {
        kind: [malformed_message(random.Random(0), kind, name) for name in malformed_kinds()]
        for kind in (EventType.ORDER, EventType.PAYMENT)
    }
    async with (
        run_consumer(p.orders_subscription, OrderHandler(resources.orders, resources.dlq)) as oc,
        run_consumer(p.payments_subscription, payment_handler(resources)) as pc,
    ):
        for kind, topic in (
            (EventType.ORDER, p.orders_topic),
            (EventType.PAYMENT, p.payments_topic),
        ):
            await resources.publisher.publish(
                topic, [OutgoingMessage(m.data, m.attributes) for m in bad[kind]]
            )
        total = len(malformed_kinds())
        await eventually(lambda: acked(oc, total))
        await eventually(lambda: acked(pc, total))
    dead = await drain(resources, p.dead_letter_subscription, 2 * total)
    sent = sorted(m.data for kind in bad for m in bad[kind])
    assert sorted(m.data for m in dead) == sent  # byte for byte
    reasons = sorted(m.attributes["error_reason"] for m in dead)
    assert reasons == sorted(_KINDS[name][1] for name in malformed_kinds() for _ in range(2))
    assert {m.attributes["source_subscription"] for m in dead} == {
        p.orders_subscription,
        p.payments_subscription,
    }
    assert await dlq_rows(resources) == []
    c = settings.cassandra
    count = (
        (
            await resources.cql.execute(
                acsylla.create_statement(f"SELECT count(*) AS n FROM {c.keyspace}.{c.orders_table}")
            )
        )
        .first()
        .as_dict()["n"]
    )
    assert count == 0
    await drain(resources, p.dlq_payments_subscription, 0)


async def test_a_later_payment_replaces_an_earlier_one_whatever_the_delivery_order(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    p = settings.pubsub
    earlier = body(PAYMENT, payment_id=10, payment_status="Failed")
    later = body(PAYMENT, payment_id=11, payment_datetime="2026-01-01T10:06:00+02:00")
    async with run_consumer(
        p.orders_subscription, OrderHandler(resources.orders, resources.dlq)
    ) as oc:
        await send_and_wait(resources, oc, p.orders_topic, [body(ORDER)], ORDER_ATTRS)
    async with run_consumer(p.payments_subscription, payment_handler(resources)) as pc:
        await send_and_wait(resources, pc, p.payments_topic, [later], PAYMENT_ATTRS)
        await send_and_wait(resources, pc, p.payments_topic, [earlier], PAYMENT_ATTRS)
    stored = await row(resources, 1)
    assert stored is not None
    assert (stored["payment_id"], stored["payment_status"]) == (11, "Completed")


async def test_several_dlq_workers_at_once_reconcile_everything_once(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    p = settings.pubsub
    count = 300
    payments = [body(PAYMENT, order_id=i, payment_id=i * 10) for i in range(1, count + 1)]
    async with run_consumer(p.payments_subscription, payment_handler(resources)) as pc:
        await send_and_wait(resources, pc, p.payments_topic, payments, PAYMENT_ATTRS)
    assert len(await dlq_rows(resources)) == count
    await store_orders_only(resources, count)
    workers = [
        Reconciler(resources.orders, resources.dlq, WorkerSettings(concurrency=16, page_size=50))
        for _ in range(3)
    ]
    reports = await asyncio.gather(*(w.run_pass() for w in workers))
    assert sum(r.failed for r in reports) == 0
    # Workers that meet on a row both complete it (idempotent), so together they count >= all.
    assert sum(r.reconciled for r in reports) >= count
    leftover = await Reconciler(resources.orders, resources.dlq, WorkerSettings()).run_pass()
    assert (leftover.waiting, leftover.reconciled) == (0, 0)  # stubs from the race are removed
    assert await dlq_rows(resources) == []
    for order_id in (1, count // 2, count):
        stored = await row(resources, order_id)
        assert stored is not None
        assert (stored["payment_id"], stored["payment_source"]) == (order_id * 10, "dlq")


async def test_many_orders_at_once_each_take_their_own_parked_payments(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    """The order consumer's looks share ``IN`` reads; each order must get its own payments."""
    p = settings.pubsub
    count = 300
    payments = [body(PAYMENT, order_id=i, payment_id=i * 10) for i in range(1, count + 1)]
    seconds = [body(PAYMENT, order_id=i, payment_id=i * 10 + 1) for i in range(1, count + 1, 50)]
    async with run_consumer(p.payments_subscription, payment_handler(resources)) as pc:
        await send_and_wait(resources, pc, p.payments_topic, payments + seconds, PAYMENT_ATTRS)
    assert len(await dlq_rows(resources)) == count + len(seconds)
    orders = [body(ORDER, order_id=i) for i in range(1, count + 1)]
    async with run_consumer(
        p.orders_subscription, OrderHandler(resources.orders, resources.dlq)
    ) as oc:
        await send_and_wait(resources, oc, p.orders_topic, orders, ORDER_ATTRS)
    assert await dlq_rows(resources) == []
    for order_id in range(1, count + 1):
        stored = await row(resources, order_id)
        assert stored is not None
        # Of two payments, the later (same time, higher id) wins: never another order's.
        expected = order_id * 10 + (1 if (order_id - 1) % 50 == 0 else 0)
        assert (stored["payment_id"], stored["payment_source"]) == (expected, "order")
