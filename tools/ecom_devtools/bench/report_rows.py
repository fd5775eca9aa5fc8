"""The report benchmark's table: N orders as the consumers leave them, written straight into a
keyspace of its own with the product's schema, and reused by a later run that finds it full.

Each order has the order consumer's columns; four in five also have a payment's (method,
status, time, source). Rows without a payment are written by a statement that does not name
the payment columns, so that they stay absent rather than hold tombstones. Values are fixed by
the order's index, so a table filled by an earlier run holds the same rows. A few payments
whose order never came wait in the DLQ table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import acsylla

from ecom_producer.stream import ORDER_STATUSES, PAYMENT_METHODS
from ecom_shared.cassandra.cqltypes import decimal_to_blob
from ecom_shared.cassandra.schema import schema_statements
from ecom_shared.cassandra.session import Prepared, Session, bind, token_ranges
from ecom_shared.settings import CassandraSettings

KEYSPACE: Final = "ecom_bench_report"
ORDERS_TABLE: Final = "order_payments"
DLQ_TABLE: Final = "payments_dlq"
ID_BASE: Final = 1_000_000
T0: Final = datetime(2026, 1, 1, tzinfo=UTC)
DAYS: Final = 30
"""Orders are created over this many days from :data:`T0`."""
AS_OF: Final = T0 + timedelta(days=DAYS + 10)
"""The instant both engines count ages up to, so their figures can be compared."""
IN_FLIGHT: Final = 192
CHUNK: Final = 20_000
"""Rows generated (in a thread) while the previous chunk is written."""
ATTEMPTS: Final = 6
PAID_EVERY: Final = 5
"""One order in this many has no payment (80 % are paid)."""
PARKED_EVERY: Final = 1000
"""One orphan payment parked in the DLQ table per this many orders."""
COUNT_RANGES: Final = 256
"""Token ranges counted one at a time: a count over 1/32 of a million rows, on a node just
started, outlasted the server's read timeout."""

ITEMS: Final = (
    "Laptop", "Phone", "Wireless earbuds", "Running shoes", "Coffee grinder", "Desk lamp",
    "Backpack", "Monitor", "Keyboard", "Water bottle", "Headphones", "Yoga mat",
)  # fmt: skip
PAYMENT_STATUSES: Final = ("Completed",) * 8 + ("Pending", "Failed")
PAYMENT_SOURCES: Final = ("stream",) * 17 + ("order", "order", "dlq")

_ORDER_COLUMNS: Final = (
    "order_id", "customer_id", "item", "quantity", "price", "shipping_address", "order_status",
    "order_created_at", "order_created_on", "order_version_at", "order_ingested_at",
)  # fmt: skip
_PAYMENT_COLUMNS: Final = (
    "payment_id", "payment_method", "card_last_four", "payment_status", "paid_at",
    "payment_ingested_at", "payment_source",
)  # fmt: skip
_PARKED_COLUMNS: Final = (
    "order_id", "payment_id", "payment_method", "card_last_four", "payment_status", "paid_at",
    "parked_at", "attempts", "published_at",
)  # fmt: skip


def settings(port: int) -> CassandraSettings:
    """Where the report benchmark's tables live (the product's defaults otherwise)."""
    return CassandraSettings(
        port=port, keyspace=KEYSPACE, orders_table=ORDERS_TABLE, dlq_table=DLQ_TABLE
    )


def _insert(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("blobAsDecimal(?)" if c == "price" else "?" for c in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


@dataclass(frozen=True)
class Statements:
    """The three inserts: an order without payment, with one, and a parked payment."""

    order: str
    paid_order: str
    parked: str

    @staticmethod
    def of(config: CassandraSettings) -> Statements:
        orders = f"{config.keyspace}.{config.orders_table}"
        return Statements(
            order=_insert(orders, _ORDER_COLUMNS),
            paid_order=_insert(orders, _ORDER_COLUMNS + _PAYMENT_COLUMNS),
            parked=_insert(f"{config.keyspace}.{config.dlq_table}", _PARKED_COLUMNS),
        )


def paid(i: int) -> bool:
    return i % PAID_EVERY != PAID_EVERY - 1


def parked_count(orders: int) -> int:
    return orders // PARKED_EVERY


def _mix(i: int, salt: int) -> int:
    """A well-spread non-negative integer from ``i`` (Knuth's multiplicative hash)."""
    return ((i + salt) * 2_654_435_761) % 2**32


def order_values(i: int, orders: int) -> list[Any]:
    """Order ``i`` of ``orders``: the order consumer's columns, in :data:`_ORDER_COLUMNS`'
    order. Creation days cover :data:`DAYS` days; the app sends a date only (midnight UTC)."""
    h = _mix(i, 1)
    day = (T0 + timedelta(days=i * DAYS // max(orders, 1))).date()
    created = datetime.combine(day, datetime.min.time(), UTC)
    cents = 199 + h % 149_800  # 1.99 to 1499.98
    return [
        ID_BASE + i, 1 + h % 50_000, ITEMS[h % len(ITEMS)], 1 + (h >> 8) % 5,
        decimal_to_blob(Decimal(cents).scaleb(-2)), f"{h % 999} Main St, City {h % 40}, Country",
        ORDER_STATUSES[(h >> 4) % len(ORDER_STATUSES)], created, day,
        created, created + timedelta(seconds=1 + h % 600),
    ]  # fmt: skip


def payment_values(i: int, created: datetime) -> list[Any]:
    """The payment columns of order ``i``: paid seconds to days after its creation."""
    h = _mix(i, 2)
    at = created + timedelta(seconds=h % 172_800)
    return [
        (ID_BASE + i) * 10, PAYMENT_METHODS[h % len(PAYMENT_METHODS)], f"{h % 10_000:04d}",
        PAYMENT_STATUSES[(h >> 3) % len(PAYMENT_STATUSES)], at, at + timedelta(milliseconds=40),
        PAYMENT_SOURCES[(h >> 6) % len(PAYMENT_SOURCES)],
    ]  # fmt: skip


def parked_values(k: int, orders: int) -> list[Any]:
    """Orphan payment ``k``: its order id lies past every order's."""
    h = _mix(k, 3)
    order_id = ID_BASE + orders + 1 + k
    at = T0 + timedelta(days=h % (DAYS + 9), seconds=h % 86_400)
    return [
        order_id, order_id * 10, PAYMENT_METHODS[h % len(PAYMENT_METHODS)], f"{h % 10_000:04d}",
        "Completed", at, at + timedelta(seconds=1), h % 4, at,
    ]  # fmt: skip


def order_rows(start: int, stop: int, orders: int) -> list[tuple[bool, list[Any]]]:
    """Orders ``start..stop``: (has a payment, the values of its insert)."""
    rows = []
    for i in range(start, stop):
        values = order_values(i, orders)
        if paid(i):
            rows.append((True, values + payment_values(i, values[7])))
        else:
            rows.append((False, values))
    return rows


async def _retried(session: Session, prepared: Prepared, values: list[Any]) -> Any:
    """Run a prepared statement; a failure is tried again (these statements are idempotent)
    up to :data:`ATTEMPTS` times in all, a loaded machine times requests out now and then."""
    for attempt in range(1, ATTEMPTS):
        try:
            return await session.execute(bind(prepared, values))
        except acsylla.errors.CassException:
            await asyncio.sleep(0.5 * 2**attempt)
    return await session.execute(bind(prepared, values))  # the last attempt: errors go up


async def write_all(session: Session, work: Iterator[tuple[Prepared, list[Any]]]) -> None:
    """Run each prepared statement with its values, :data:`IN_FLIGHT` at a time."""

    async def writer() -> None:
        for prepared, values in work:  # one shared iterator: each item goes to one writer
            await _retried(session, prepared, values)

    await asyncio.gather(*(writer() for _ in range(IN_FLIGHT)))


async def count_rows(session: Session, table: str) -> int:
    """Rows of ``table``, counted a token range at a time (one count of a million rows can
    outlast a request timeout)."""
    prepared = await session.create_prepared(
        f"SELECT COUNT(*) FROM {table} WHERE token(order_id) >= ? AND token(order_id) <= ?"
    )
    slots = asyncio.Semaphore(4)

    async def one(bounds: tuple[int, int]) -> int:
        async with slots:
            result = await _retried(session, prepared, list(bounds))
            return int(result.first().as_tuple()[0])

    return sum(await asyncio.gather(*(one(b) for b in token_ranges(COUNT_RANGES))))


async def is_filled(session: Session, config: CassandraSettings, orders: int) -> bool:
    """Whether both tables hold exactly what :func:`fill` writes for ``orders`` orders."""
    schema = await session.create_prepared(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?"
    )
    tables = await session.execute(bind(schema, [config.keyspace]))
    present = {row.as_tuple()[0] for row in tables}
    if not {config.orders_table, config.dlq_table} <= present:
        return False
    dlq = await count_rows(session, f"{config.keyspace}.{config.dlq_table}")
    if dlq != parked_count(orders):
        return False
    return await count_rows(session, f"{config.keyspace}.{config.orders_table}") == orders


async def fill(session: Session, config: CassandraSettings, orders: int) -> None:
    """Create the keyspace and tables (dropping old ones) and write ``orders`` orders and
    their parked orphans; the next chunk is generated in a thread while one is written."""
    for table in (config.orders_table, config.dlq_table):
        drop = f"DROP TABLE IF EXISTS {config.keyspace}.{table}"
        await session.execute(acsylla.create_statement(drop))
    for statement in schema_statements(config):
        await session.execute(acsylla.create_statement(statement))
    texts = Statements.of(config)
    order = await session.create_prepared(texts.order)
    paid_order = await session.create_prepared(texts.paid_order)
    parked = await session.create_prepared(texts.parked)
    writing: asyncio.Future[None] | None = None
    for start in range(0, orders, CHUNK):
        rows = await asyncio.to_thread(order_rows, start, min(start + CHUNK, orders), orders)
        if writing is not None:
            await writing
        work = ((paid_order if has_payment else order, v) for has_payment, v in rows)
        writing = asyncio.ensure_future(write_all(session, work))
    if writing is not None:
        await writing
    orphans = (parked_values(k, orders) for k in range(parked_count(orders)))
    await write_all(session, ((parked, v) for v in orphans))
