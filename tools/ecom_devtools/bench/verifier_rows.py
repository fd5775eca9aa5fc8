"""The verifier benchmark's data: N orders with their payments (a tenth re-emitted, 95 % paid,
1 % orphan payments parked), inserted straight into Cassandra with concurrent prepared
statements while the matching manifest is written with the producer's own record writers.

Bodies are in the apps' format (a capitalised status, a price with up to 17 significant
digits, a date-only creation date, no ``updated_at``), and each row holds the values of the
version written last to the manifest, as the consumers would leave them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import acsylla

from ecom_devtools.bench.context import Bench
from ecom_devtools.bench.stack import Stage
from ecom_devtools.bench.workload import ID_BASE
from ecom_producer.stream import ORDER_STATUSES, ORPHAN_ID_OFFSET, PAYMENT_METHODS
from ecom_shared.cassandra.cqltypes import decimal_to_blob
from ecom_shared.cassandra.session import Session, bind
from ecom_verifier.manifest import (
    append_records,
    malformed_record,
    open_manifest,
    order_record,
    payment_record,
)

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


@dataclass(frozen=True)
class Event:
    """One event's body as published, and its values (the price as an exact decimal)."""

    body: str
    values: dict[str, Any]

    @classmethod
    def of(cls, values: dict[str, Any]) -> Event:
        body = json.dumps(values, ensure_ascii=False)
        return cls(body, json.loads(body, parse_float=Decimal))


def make_order(i: int, order_id: int, *, newer: bool) -> Event:
    # Prices of the form json.dumps writes floats, 17 significant digits for many of them.
    price = 100 + (i % 1400) + (i % 997) / 997 + (0.5 if newer else 0.0)
    return Event.of({
        "order_id": order_id, "customer_id": 1 + i % 50_000,
        "item": f"Bench item {i % 97} ☕", "quantity": 1 + i % 5, "price": price,
        "shipping_address": f"{i % 999} Main St, City A, Country",
        "order_status": ORDER_STATUSES[0] if newer else ORDER_STATUSES[1],
        "creation_date": (_T0 + timedelta(seconds=i)).date().isoformat(),
    })  # fmt: skip


def make_payment(i: int, order_id: int) -> Event:
    return Event.of({
        "payment_id": order_id * 10, "order_id": order_id,
        "payment_method": PAYMENT_METHODS[i % len(PAYMENT_METHODS)],
        "card_last_four": f"{i % 10_000:04d}", "payment_status": "Completed",
        "payment_datetime": (_T0 + timedelta(seconds=i, minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })  # fmt: skip


def paid_at(payment: Event) -> datetime:
    return datetime.fromisoformat(payment.values["payment_datetime"])


def orders_insert_cql(stage: Stage) -> str:
    return (
        f"INSERT INTO {stage.orders_table} (order_id, customer_id, item, quantity, price,"
        " shipping_address, order_status, order_created_at, order_created_on, payment_id,"
        " payment_method, card_last_four, payment_status, paid_at, payment_source) VALUES"
        " (?, ?, ?, ?, blobAsDecimal(?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )


def row_values(order: Event, payment: Event | None) -> list[Any]:
    o = order.values
    day = date.fromisoformat(o["creation_date"])
    values: list[Any] = [
        o["order_id"], o["customer_id"], o["item"], o["quantity"], decimal_to_blob(o["price"]),
        o["shipping_address"], o["order_status"], datetime.combine(day, datetime.min.time(), UTC),
        day,
    ]  # fmt: skip
    if payment is None:
        return [*values, None, None, None, None, None, None]
    p = payment.values
    return [
        *values, p["payment_id"], p["payment_method"], p["card_last_four"], p["payment_status"],
        paid_at(payment), "stream",
    ]  # fmt: skip


def _chunk(shape: Shape, start: int, stop: int, lines: list[str]) -> list[list[Any]]:
    """Orders ``start..stop``: their manifest lines (appended) and their rows' values."""
    rows = []
    for i in range(start, stop):
        order_id = shape.order_id(i)
        order = make_order(i, order_id, newer=False)
        lines.append(order_record(order.body, duplicate=False))
        if shape.reemitted(i):
            order = make_order(i, order_id, newer=True)
            lines.append(order_record(order.body))
        payment = make_payment(i, order_id) if shape.paid(i) else None
        if payment is not None:
            lines.append(payment_record(payment.body, orphan=False))
            if (i + 39) % _DUPLICATE_EVERY == 0:
                lines.append(payment_record(payment.body, orphan=False, duplicate=True))
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
    return rows, append_records(out, lines)


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
        records = [payment_record(p.body, orphan=True) for p in orphans]
        written += append_records(out, [*records, malformed_record("orders", "invalid_json")])
    await execute_all(
        bench.cql,
        f"INSERT INTO {stage.dlq_table} (order_id, payment_id, payment_method, card_last_four,"
        " payment_status, paid_at, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [parked_values(p) for p in orphans],
    )
    return written


def parked_values(payment: Event) -> list[Any]:
    """A DLQ row's values as the payment consumer parks this payment."""
    p = payment.values
    return [
        p["order_id"], p["payment_id"], p["payment_method"], p["card_last_four"],
        p["payment_status"], paid_at(payment), datetime.now(UTC),
    ]  # fmt: skip
