"""The verifier benchmark's data: N orders with their payments (a tenth re-emitted, 95 % paid,
1 % orphan payments parked), inserted straight into Cassandra with concurrent prepared
statements while the matching manifest is written with the producer's own record writer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import acsylla

from ecom_devtools.bench.context import Bench
from ecom_devtools.bench.stack import Stage
from ecom_devtools.bench.workload import ID_BASE
from ecom_producer.stream import ORPHAN_ID_OFFSET
from ecom_shared.cassandra import Session, bind
from ecom_shared.cqltypes import decimal_to_blob
from ecom_shared.events import Order, OrderStatus, Payment, PaymentMethod, PaymentStatus
from ecom_shared.manifest import malformed_record, open_manifest, order_record, payment_record

_CHUNK = 20_000  # orders generated, written to the manifest and inserted at a time
_T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORPHAN_BASE = ID_BASE + ORPHAN_ID_OFFSET
_IN_FLIGHT = 128  # inserts in flight while filling
_ATTEMPTS = 6  # a loaded machine times writes out now and then: they are idempotent
_REEMIT_EVERY, _UNPAID_EVERY, _DUPLICATE_EVERY = 10, 20, 50  # one order in so many


@dataclass(frozen=True)
class Shape:
    """Which orders are re-emitted, unpaid, orphaned, duplicated: fixed shares by index."""

    orders: int

    @property
    def hole(self) -> int:
        """An order id inside the range that no order takes (a row there is unexplained)."""
        return ID_BASE + self.orders // 2

    def order_id(self, i: int) -> int:
        return ID_BASE + i + (1 if ID_BASE + i >= self.hole else 0)

    @staticmethod
    def reemitted(i: int) -> bool:
        return (i + 7) % _REEMIT_EVERY == 0

    @staticmethod
    def paid(i: int) -> bool:
        return (i + 13) % _UNPAID_EVERY != 0

    @property
    def orphans(self) -> int:
        return max(3, self.orders // 100)


def make_order(i: int, order_id: int, *, newer: bool) -> Order:
    created = _T0 + timedelta(seconds=i)
    return Order.model_construct(
        order_id=order_id, customer_id=1 + i % 50_000, item=f"Bench item {i % 97} ☕",
        quantity=1 + i % 5, price=Decimal(199 + i % 90_000) / 100,
        shipping_address=f"{i % 999} Main St, Springfield",
        order_status=OrderStatus.SHIPPED if newer else OrderStatus.PENDING,
        creation_date=created, updated_at=created + timedelta(hours=1 if newer else 0),
    )  # fmt: skip


def make_payment(i: int, order_id: int) -> Payment:
    return Payment.model_construct(
        payment_id=order_id * 10, order_id=order_id,
        payment_method=list(PaymentMethod)[i % len(PaymentMethod)],
        card_last_four=f"{i % 10_000:04d}", payment_status=PaymentStatus.COMPLETED,
        payment_datetime=_T0 + timedelta(seconds=i, minutes=5),
    )  # fmt: skip


def orders_insert_cql(stage: Stage) -> str:
    return (
        f"INSERT INTO {stage.orders_table} (order_id, customer_id, item, quantity, price,"
        " shipping_address, order_status, order_created_at, payment_id, payment_method,"
        " card_last_four, payment_status, paid_at, payment_source) VALUES (?, ?, ?, ?,"
        " blobAsDecimal(?), ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )


def row_values(order: Order, payment: Payment | None) -> list[Any]:
    values: list[Any] = [
        order.order_id, order.customer_id, order.item, order.quantity,
        decimal_to_blob(order.price), order.shipping_address, order.order_status.value,
        order.creation_date,
    ]  # fmt: skip
    if payment is None:
        return [*values, None, None, None, None, None, None]
    return [
        *values, payment.payment_id, payment.payment_method.value, payment.card_last_four,
        payment.payment_status.value, payment.payment_datetime, "stream",
    ]  # fmt: skip


def _chunk(shape: Shape, start: int, stop: int, lines: list[str]) -> list[list[Any]]:
    """Orders ``start..stop``: their manifest lines (appended) and their rows' values."""
    rows = []
    for i in range(start, stop):
        order_id = shape.order_id(i)
        order = make_order(i, order_id, newer=False)
        lines.append(order_record(order, duplicate=False))
        if shape.reemitted(i):
            order = make_order(i, order_id, newer=True)
            lines.append(order_record(order))
        payment = make_payment(i, order_id) if shape.paid(i) else None
        if payment is not None:
            lines.append(payment_record(payment, orphan=False))
            if (i + 39) % _DUPLICATE_EVERY == 0:
                lines.append(payment_record(payment, orphan=False, duplicate=True))
        rows.append(row_values(order, payment))
    return rows


async def execute_all(session: Session, cql: str, rows: list[list[Any]]) -> None:
    """One prepared statement per row of values, ``_IN_FLIGHT`` at a time, retried."""
    prepared = await session.create_prepared(cql)
    slots = asyncio.Semaphore(_IN_FLIGHT)

    async def one(values: list[Any]) -> None:
        async with slots:
            for attempt in range(_ATTEMPTS):
                try:
                    await session.execute(bind(prepared, values))
                except acsylla.errors.CassException:
                    if attempt == _ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.5 * 2**attempt)
                else:
                    return

    await asyncio.gather(*(one(v) for v in rows))


def _write_chunk(shape: Shape, start: int, out: TextIO) -> tuple[list[list[Any]], int]:
    lines: list[str] = []
    rows = _chunk(shape, start, min(start + _CHUNK, shape.orders), lines)
    out.write("\n".join(lines) + "\n")
    return rows, len(lines)


async def fill(bench: Bench, stage: Stage, shape: Shape, manifest: Path) -> int:
    """Write the tables and the manifest; return the manifest's line count. The next chunk
    is planned (in a thread) while the last one is inserted."""
    cql = orders_insert_cql(stage)
    written = 0
    with open_manifest(manifest) as out:
        inserting: asyncio.Future[None] | None = None
        for start in range(0, shape.orders, _CHUNK):
            rows, count = await asyncio.to_thread(_write_chunk, shape, start, out)
            written += count
            if inserting is not None:
                await inserting
            inserting = asyncio.ensure_future(execute_all(bench.cql, cql, rows))
        if inserting is not None:
            await inserting
        orphans = [make_payment(k, ORPHAN_BASE + k) for k in range(1, shape.orphans + 1)]
        out.write("".join(payment_record(p, orphan=True) + "\n" for p in orphans))
        out.write(malformed_record("orders", "invalid_json") + "\n")
        written += len(orphans) + 1
    await execute_all(
        bench.cql,
        f"INSERT INTO {stage.dlq_table} (order_id, payment_id, payment_method, card_last_four,"
        " payment_status, paid_at, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            [p.order_id, p.payment_id, p.payment_method.value, p.card_last_four,
             p.payment_status.value, p.payment_datetime, datetime.now(UTC)]
            for p in orphans
        ],
    )  # fmt: skip
    return written
