"""After an emulator restart: publish again what the manifest says the tables still lack.

The emulator keeps messages in memory only, so a restart loses every message it held. What
the manifest promises and the tables do not show yet is published again: the version published
last of each order whose row does not hold its values (published again, it is the newest),
each winning payment neither joined nor parked, each orphan payment not parked, and, per topic
and reason, as many malformed messages as the manifest lists beyond those already seen on the
dead-letter subscription. Writes are idempotent, so a
message published again that was not lost after all changes nothing.

Call it only when no consumer holds a message pulled before the restart (their in-flight
gauge is 0), or such a message could be both written late and published again (harmless for
the tables, but a malformed one would then be dead-lettered twice).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ecom_producer.malformed import malformed_kinds, malformed_message
from ecom_shared.cassandra.session import Session, cassandra_session, scan_by_token
from ecom_shared.events import EventType
from ecom_shared.pubsub.client import OutgoingMessage, PubSubPublisher, http_session
from ecom_shared.settings import CassandraSettings, ServiceSettings
from ecom_verifier.manifest import ExpectedState, Sent


@dataclass(frozen=True, slots=True)
class Stored:
    """What the tables hold of a run: order values, joined payment ids, parked keys."""

    orders: dict[int, tuple[Any, ...]]
    joined: dict[int, int]
    parked: set[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Republished:
    orders: int
    payments: int
    orphans: int
    malformed: int
    on_topic: dict[str, int]
    """How many went to each topic (``orders``, ``payments``), malformed ones included."""

    @property
    def total(self) -> int:
        return self.orders + self.payments + self.orphans + self.malformed


async def read_stored(session: Session, settings: CassandraSettings) -> Stored:
    table = f"{settings.keyspace}.{settings.orders_table}"
    rows = await session.create_prepared(
        f"SELECT order_id, {', '.join(_ORDER_COLUMNS)}, CAST(price AS text) AS price, "
        f"payment_id FROM {table} WHERE token(order_id) >= ? AND token(order_id) <= ?"
    )
    orders: dict[int, tuple[Any, ...]] = {}
    joined: dict[int, int] = {}
    async for row in scan_by_token(session, rows, page_size=1000, segments=16):
        order_id = row.column_value("order_id")
        if row.column_value("order_status") is not None:
            price = row.column_value("price")
            values = [row.column_value(name) for name in _ORDER_COLUMNS]
            orders[order_id] = (*values, Decimal(price).as_tuple())
        if (payment_id := row.column_value("payment_id")) is not None:
            joined[order_id] = payment_id
    dlq = await session.create_prepared(
        f"SELECT order_id, payment_id FROM {settings.keyspace}.{settings.dlq_table} "
        "WHERE token(order_id) >= ? AND token(order_id) <= ?"
    )
    parked = {
        (row.column_value("order_id"), row.column_value("payment_id"))
        async for row in scan_by_token(session, dlq, page_size=1000, segments=16)
    }
    return Stored(orders, joined, parked)


_ORDER_COLUMNS = ("customer_id", "item", "quantity", "shipping_address", "order_status")


def _order_values(sent: Sent) -> tuple[Any, ...]:
    """What a row holds of this order version, in :func:`read_stored`'s form."""
    values = [sent.event[name] for name in _ORDER_COLUMNS]
    return (*values, Decimal(str(sent.event["price"])).as_tuple())


def lost_events(expected: ExpectedState, stored: Stored) -> tuple[list[Sent], list[Sent]]:
    """Orders and payments (winning and orphan) whose effect the tables do not show."""
    orders = [
        sent
        for order_id, sent in expected.orders.items()
        if stored.orders.get(order_id) != _order_values(sent)
    ]
    payments = [
        payment
        for order_id, payment in expected.payments.items()
        if stored.joined.get(order_id) != payment.payment_id
        and (order_id, payment.payment_id) not in stored.parked
    ]
    payments += [p for key, p in expected.parked.items() if key not in stored.parked]
    return orders, payments


def malformed_like(topic: str, reason: str) -> OutgoingMessage:
    """A bad message for ``topic`` that the pipeline dead-letters with ``reason``."""
    kind = EventType.ORDER if topic == "orders" else EventType.PAYMENT
    for name in malformed_kinds():
        planned = malformed_message(random.Random(0), kind, name)
        if json.loads(planned.record)["reason"] == reason:
            return OutgoingMessage(planned.data, planned.attributes)
    raise ValueError(f"the producer makes no malformed message with reason {reason!r}")


async def republish_lost(
    settings: ServiceSettings, expected: ExpectedState, missing_dead_letters: Counter[str]
) -> Republished:
    """Publish again what the tables lack, and the malformed messages (``topic/reason``
    counts) that never reached the dead-letter subscription."""
    async with cassandra_session(settings.cassandra) as session:
        stored = await read_stored(session, settings.cassandra)
    orders, payments = lost_events(expected, stored)
    orphans = sum(1 for p in payments if p.order_id not in expected.orders)
    p = settings.pubsub
    bad: dict[str, list[OutgoingMessage]] = {p.orders_topic: [], p.payments_topic: []}
    for key, count in missing_dead_letters.items():
        topic, reason = key.split("/", 1)
        name = p.orders_topic if topic == "orders" else p.payments_topic
        bad[name] += [malformed_like(topic, reason)] * count
    outgoing = {
        p.orders_topic: [OutgoingMessage(o.body) for o in orders] + bad[p.orders_topic],
        p.payments_topic: [OutgoingMessage(x.body) for x in payments] + bad[p.payments_topic],
    }
    async with http_session() as http:
        publisher = PubSubPublisher(http, p.project_id)
        for topic, messages in outgoing.items():
            for start in range(0, len(messages), 1000):  # Pub/Sub's limit per request
                await publisher.publish(topic, messages[start : start + 1000])
    return Republished(
        orders=len(orders),
        payments=len(payments) - orphans,
        orphans=orphans,
        malformed=sum(missing_dead_letters.values()),
        on_topic={
            "orders": len(outgoing[p.orders_topic]),
            "payments": len(outgoing[p.payments_topic]),
        },
    )
