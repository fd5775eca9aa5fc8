"""Which version a row ends with, on the real Cassandra 5.0.

Messages are handed to the services' own handlers with chosen publish times (as the consumer
loop would after a pull), so each test fixes the delivery order it means; the emulator is used
where the publish time itself is the point (one publish request, one ``publishTime``).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_order_consumer.handler import OrderHandler
from ecom_shared.clock import utc_now
from ecom_shared.completion import complete_parked
from ecom_shared.errors import InvalidMessage
from ecom_shared.events import Order, parse_event
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.runtime.resources import Resources
from ecom_shared.settings import ServiceSettings
from tests.integration.conftest import RunConsumer, acked, publish
from tests.integration.test_pipeline import (
    ORDER,
    PAYMENT,
    dlq_rows,
    drain,
    payment_handler,
    row,
)
from tests.polling import eventually
from tests.unit.shared.test_events import body

PUBLISHED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ORDER_FIELDS = ("customer_id", "item", "quantity", "price", "shipping_address", "order_status")
_ids = itertools.count(1)

Joiner = str
"""How a parked payment is joined: ``order`` (the order consumer's look when its order comes)
or ``dlq`` (the DLQ worker's pass over an order stored without that look)."""


def message(data: bytes, published: datetime = PUBLISHED) -> ReceivedMessage:
    n = next(_ids)
    return ReceivedMessage(f"ack-v{n}", f"msg-v{n}", published, data, {})


async def join(resources: Resources, joiner: Joiner) -> None:
    """Bring order 1, and with it what is parked for it, in the way ``joiner`` names."""
    if joiner == "order":
        await OrderHandler(resources.orders, resources.dlq)(message(body(ORDER)))
        return
    order = parse_event(Order, body(ORDER), None)
    await resources.orders.upsert_order(order, 1_000_000, utc_now())
    report = await Reconciler(resources.orders, resources.dlq, WorkerSettings()).run_pass()
    assert report.failed == 0


async def stored_payment(resources: Resources) -> tuple[Any, ...]:
    stored = await row(resources, 1)
    assert stored is not None
    return stored["payment_id"], stored["payment_status"], stored["card_last_four"]


# Versions of one payment.

PAID = datetime(2026, 1, 1, 8, 5, tzinfo=UTC)  # PAYMENT's payment_datetime
PENDING = body(PAYMENT, payment_status="Pending", card_last_four="1111")
COMPLETED = body(PAYMENT, payment_status="Completed", card_last_four="2222")
CORRECTED = body(
    PAYMENT,
    payment_status="Completed",
    card_last_four="2222",
    payment_datetime="2026-01-01T10:05:07+02:00",
)


@pytest.mark.parametrize("joiner", ["order", "dlq"])
@pytest.mark.parametrize("newer", [COMPLETED, CORRECTED], ids=["same-time", "later-time"])
async def test_of_two_versions_parked_newer_first_the_newer_is_stored(
    resources: Resources, joiner: Joiner, newer: bytes
) -> None:
    """The newer version (published later; ``later-time``: a later ``payment_datetime`` too)
    is delivered and parked first, the older one after it: the join must store the newer."""
    on_payment = payment_handler(resources)
    await on_payment(message(newer, PAID + timedelta(seconds=9)))
    await on_payment(message(PENDING, PAID + timedelta(seconds=2)))
    await join(resources, joiner)
    assert await stored_payment(resources) == (10, "Completed", "2222")
    assert await dlq_rows(resources) == []


@pytest.mark.parametrize("path", ["stream", "order", "dlq"])
@pytest.mark.parametrize("completed_first", [False, True], ids=["pending-first", "completed-first"])
async def test_a_status_change_that_keeps_the_payment_time_wins(
    resources: Resources, path: str, completed_first: bool
) -> None:
    """Pending, then Completed one second later with the same ``payment_datetime``, delivered
    in either order: to an order already stored (``stream``), or parked and then joined."""
    pending_at = PAID + timedelta(seconds=2)
    versions = [message(PENDING, pending_at), message(COMPLETED, pending_at + timedelta(seconds=1))]
    if completed_first:
        versions.reverse()
    if path == "stream":
        await join(resources, "order")
    on_payment = payment_handler(resources)
    for version in versions:
        await on_payment(version)
    if path != "stream":
        await join(resources, path)
    assert await stored_payment(resources) == (10, "Completed", "2222")
    assert await dlq_rows(resources) == []


async def test_a_join_deletes_only_the_version_it_joined(resources: Resources) -> None:
    """A worker reads the parked Pending version; Completed is parked before it deletes: the
    delete must leave Completed parked, and the next pass must store it."""
    on_payment = payment_handler(resources)
    await on_payment(message(PENDING, PAID + timedelta(seconds=2)))
    [stale] = (await resources.dlq.parked_for_many([1]))[1]
    await on_payment(message(COMPLETED, PAID + timedelta(seconds=3)))
    order = parse_event(Order, body(ORDER), None)
    await resources.orders.upsert_order(order, 1_000_000, utc_now())
    await complete_parked(resources.orders, resources.dlq, stale, "dlq", utc_now())
    assert [r["payment_status"] for r in await dlq_rows(resources)] == ["Completed"]
    await Reconciler(resources.orders, resources.dlq, WorkerSettings()).run_pass()
    assert await stored_payment(resources) == (10, "Completed", "2222")
    assert await dlq_rows(resources) == []


# Two versions of one order with one timestamp.

SHIPPED = {"item": "Mug", "quantity": 1, "order_status": "Shipped", "shipping_address": "1 Main"}
PENDING_ORDER = {
    "item": "Lamp",
    "quantity": 9,
    "order_status": "Pending",
    "shipping_address": "9 Elm",
}


def order_fields(stored: dict[str, Any] | None) -> dict[str, Any]:
    assert stored is not None
    return {name: stored[name] for name in ORDER_FIELDS}


def as_stored(version: dict[str, Any]) -> dict[str, Any]:
    sent = {**ORDER, **version}
    return {name: sent[name] if name != "price" else str(sent[name]) for name in ORDER_FIELDS}


@pytest.mark.parametrize("tie", ["updated_at", "publish_time"])
async def test_two_order_versions_with_one_timestamp_leave_one_whole_version(
    resources: Resources, tie: str
) -> None:
    """Versions that tie (the same ``updated_at``, or no ``updated_at`` and the same publish
    time) end as exactly one of them, the same one whatever the delivery order."""
    extra = {"updated_at": "2026-01-01T10:00:00Z"} if tie == "updated_at" else {}
    first, second = (body(ORDER, **v, **extra) for v in (SHIPPED, PENDING_ORDER))
    published = [PUBLISHED, PUBLISHED + timedelta(seconds=5 if extra else 0)]
    handler = OrderHandler(resources.orders, resources.dlq)
    await handler(message(first, published[0]))
    await handler(message(second, published[1]))
    winner = order_fields(await row(resources, 1))
    assert winner in (as_stored(SHIPPED), as_stored(PENDING_ORDER))
    for data, at in ((first, published[0]), (second, published[1])):  # redelivered, each last
        await handler(message(data, at))
        assert order_fields(await row(resources, 1)) == winner


async def test_two_versions_in_one_publish_request_leave_one_whole_version(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    """The emulator gives every message of one request the same ``publishTime``."""
    p = settings.pubsub
    versions = [body(ORDER, **v) for v in (SHIPPED, PENDING_ORDER)]
    handler = OrderHandler(resources.orders, resources.dlq)
    async with run_consumer(p.orders_subscription, handler) as consumer:
        await publish(resources, p.orders_topic, versions, {})
        await eventually(lambda: acked(consumer, 2))
    assert order_fields(await row(resources, 1)) in (as_stored(SHIPPED), as_stored(PENDING_ORDER))


# Event times after the publish time.


async def test_event_times_far_after_their_publish_time_are_dead_lettered(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    """An ``updated_at`` in 2099 would win over every later correction; it is refused, as are
    an ``updated_at`` before ``creation_date`` and a payment dated in 2099."""
    p = settings.pubsub
    locked = body(ORDER, order_status="Locked", updated_at="2099-01-01T00:00:00Z")
    backwards = body(ORDER, order_id=2, updated_at="2025-12-01T00:00:00Z")  # created 2026-01-01
    future_paid = body(PAYMENT, order_id=3, payment_datetime="2099-01-01T00:00:00Z")
    correction = body(ORDER, order_status="Corrected")
    async with (
        run_consumer(p.orders_subscription, OrderHandler(resources.orders, resources.dlq)) as oc,
        run_consumer(p.payments_subscription, payment_handler(resources)) as pc,
    ):
        await publish(resources, p.orders_topic, [locked, backwards], {})
        await publish(resources, p.payments_topic, [future_paid], {})
        await eventually(lambda: acked(oc, 2))
        await eventually(lambda: acked(pc, 1))
        await publish(resources, p.orders_topic, [correction], {})
        await eventually(lambda: acked(oc, 3))
    dead = await drain(resources, p.dead_letter_subscription, 3)
    assert sorted(m.data for m in dead) == sorted([locked, backwards, future_paid])
    assert {m.attributes["error_reason"] for m in dead} == {"invalid_value"}
    corrected = await row(resources, 1)
    assert corrected is not None
    assert corrected["order_status"] == "Corrected"
    assert await row(resources, 2) is None
    assert await dlq_rows(resources) == []


async def test_an_event_time_within_the_margin_is_taken(resources: Resources) -> None:
    """An app clock a few minutes ahead of Pub/Sub's is no reason to refuse a message."""
    ahead = (PUBLISHED + timedelta(minutes=5)).isoformat()
    handler = OrderHandler(resources.orders, resources.dlq)
    await handler(message(body(ORDER, creation_date="2026-06-01", updated_at=ahead)))
    stored = await row(resources, 1)
    assert stored is not None
    late = (PUBLISHED + timedelta(hours=2)).isoformat()
    with pytest.raises(InvalidMessage) as refused:
        await handler(message(body(ORDER, order_id=2, updated_at=late)))
    assert refused.value.reason == "invalid_value"
