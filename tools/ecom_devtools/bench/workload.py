"""The work a scenario starts from: messages published ahead of time, rows seeded directly.

Message bodies come from the producer's own planner (the apps' format: realistic text,
Unicode, prices with up to 17 significant digits, no attributes), with every share of
irregular traffic set to zero: one order and one payment per order id. Seeded rows hold the
apps' spellings too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ecom_devtools.bench.stack import PROJECT, Stage
from ecom_producer.stream import StreamOptions, StreamPlanner
from ecom_shared.cassandra.session import Session, bind
from ecom_shared.pubsub.client import (
    MAX_MESSAGES_PER_PUBLISH,
    OutgoingMessage,
    PubSubPublisher,
    http_session,
)

ID_BASE = 1_000_000
_PUBLISHERS = 4  # publish requests in flight while pre-publishing
_WRITES_IN_FLIGHT = 256  # seeding statements in flight


@dataclass(frozen=True)
class Planned:
    """``count`` orders and their payments, ready to publish."""

    orders: list[OutgoingMessage]
    payments: list[OutgoingMessage]

    @property
    def order_ids(self) -> list[int]:
        return [json.loads(m.data)["order_id"] for m in self.orders]


def plan(count: int) -> Planned:
    """``count`` valid orders with one valid payment each, ids from :data:`ID_BASE`."""
    planner = StreamPlanner(
        StreamOptions(
            seed=7,
            id_base=ID_BASE,
            payments_first=0.0,
            duplicates=0.0,
            no_payment=0.0,
            orphan_payments=0.0,
            reemits=0.0,
            second_payments=0.0,
            malformed=0.0,
        )
    )
    chunk = planner.chunk(count)
    orders = [OutgoingMessage(p.data) for p in chunk.main]
    payments = [OutgoingMessage(p.data) for p in chunk.early + chunk.late]
    return Planned(orders, payments)


async def publish_all(topic: str, messages: Sequence[OutgoingMessage]) -> float:
    """Publish ``messages`` (several requests in flight); return the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    chunks = [
        messages[i : i + MAX_MESSAGES_PER_PUBLISH]
        for i in range(0, len(messages), MAX_MESSAGES_PER_PUBLISH)
    ]
    slots = asyncio.Semaphore(_PUBLISHERS)
    async with http_session() as session:
        publisher = PubSubPublisher(session, PROJECT, timeout=60)

        async def one(chunk: Sequence[OutgoingMessage]) -> None:
            async with slots:
                await publisher.publish(topic, chunk)

        await asyncio.gather(*(one(c) for c in chunks))
    return loop.time() - started


async def execute_all(
    session: Session, cql: str, rows: Sequence[Sequence[Any]], in_flight: int = _WRITES_IN_FLIGHT
) -> None:
    """Run one prepared statement for every row of values, ``in_flight`` at a time."""
    prepared = await session.create_prepared(cql)
    slots = asyncio.Semaphore(in_flight)

    async def one(values: Sequence[Any]) -> None:
        async with slots:
            await session.execute(bind(prepared, values))

    for start in range(0, len(rows), 10_000):  # bounded task lists for a million rows
        await asyncio.gather(*(one(v) for v in rows[start : start + 10_000]))


def _moment(index: int) -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=index)


async def seed_orders(session: Session, stage: Stage, order_ids: Sequence[int]) -> None:
    """Order rows as the order consumer leaves them (``order_version_at`` set)."""
    now = datetime.now(UTC)
    cql = (
        f"INSERT INTO {stage.orders_table} (order_id, customer_id, item, quantity, "
        "shipping_address, order_status, order_created_at, order_created_on, order_version_at, "
        "order_ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    day = _moment(0)
    rows = [
        [oid, 1 + i % 5000, "Seeded item", 1, "1 Main St, City A, Country", "Pending", day,
         day.date(), _moment(i), now]
        for i, oid in enumerate(order_ids)
    ]  # fmt: skip
    await execute_all(session, cql, rows)


async def seed_parked(session: Session, stage: Stage, order_ids: Sequence[int]) -> None:
    """Parked payments (one per order id) as the payment consumer leaves them."""
    now = datetime.now(UTC)
    cql = (
        f"INSERT INTO {stage.dlq_table} (order_id, payment_id, payment_method, card_last_four, "
        "payment_status, paid_at, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    rows = [
        [oid, oid * 10, "Credit Card", "0042", "Completed", _moment(i), now]
        for i, oid in enumerate(order_ids)
    ]
    await execute_all(session, cql, rows)


async def delete_parked(session: Session, stage: Stage, order_ids: Sequence[int]) -> None:
    """One row delete per id: each leaves a tombstone, as the DLQ worker's removals do."""
    cql = f"DELETE FROM {stage.dlq_table} WHERE order_id = ? AND payment_id = ?"
    await execute_all(session, cql, [[oid, oid * 10] for oid in order_ids])
