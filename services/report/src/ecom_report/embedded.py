"""The embedded engine (the default): the tables scanned by token range, streamed in bounded
batches into DuckDB, and the figures computed there by :mod:`ecom_report.figures`' SQL.

DuckDB keeps the rows in a scratch database file, not in memory: its buffer pool is capped at
:data:`MEMORY_LIMIT` and spills beyond it, and the scan holds a few pages and one batch, so the
report's memory does not grow with the table. A batch is converted and inserted on a worker
thread (DuckDB releases the GIL) while the scan goes on reading the next pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import duckdb
import pyarrow as pa

from ecom_report import columns
from ecom_report.columns import Column
from ecom_shared.cassandra.session import Session, scan_pages
from ecom_shared.settings import CassandraSettings

MEMORY_LIMIT: Final = "256MB"
BATCH_ROWS: Final = 20_000
"""Rows converted and inserted at once: large enough that DuckDB's per-insert cost is small."""
PAGE_SIZE: Final = 5000
SEGMENTS: Final = 256
"""Token ranges the ring is cut into; readers take them in turn."""
READERS: Final = 4
"""Token ranges read at once: enough to keep Cassandra busy while a page is converted."""
PAGE_ATTEMPTS: Final = 6
"""A page that times out is asked for again (reads are idempotent)."""

_ARROW_TYPES: Final = {
    "BIGINT": pa.int64(),
    "INT": pa.int32(),
    "STRING": pa.string(),
    "DATE": pa.date32(),
    columns.MONEY: pa.string(),  # the exact text Cassandra gives; DuckDB casts it
}


def _load_expression(column: Column) -> str:
    """How a scanned value becomes the figures' column (DuckDB's own SQL)."""
    if column.type == columns.MONEY:
        return f"CAST({column.name} AS {columns.MONEY})"
    if column.name == "created_on":  # rows from before the column existed: the UTC day
        return "COALESCE(created_on, CAST(epoch_ms(created_ms) AS DATE))"
    return column.name


class _Table(NamedTuple):
    name: str
    columns: tuple[Column, ...]
    key: str
    schema: pa.Schema
    insert: str


def _table(name: str, cols: tuple[Column, ...], key: str) -> _Table:
    schema = pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in cols])
    select = ", ".join(_load_expression(c) for c in cols)
    return _Table(name, cols, key, schema, f"INSERT INTO {name} SELECT {select} FROM batch")


ORDERS: Final = _table("orders", columns.ORDERS, "order_id")
PARKED: Final = _table("parked", columns.PARKED, "order_id, payment_id")


class LoadCounts(NamedTuple):
    orders: int
    parked: int


class EmbeddedEngine:
    """DuckDB over a scratch file in ``directory``; close it to let the file go."""

    name: Final = "embedded"

    def __init__(self, directory: Path, *, memory_limit: str = MEMORY_LIMIT) -> None:
        self._db = duckdb.connect(
            str(directory / "report.duckdb"),
            config={
                "memory_limit": memory_limit,
                "temp_directory": str(directory / "spill"),
                "preserve_insertion_order": False,
            },
        )
        for table in (ORDERS, PARKED):
            definition = ", ".join(f"{c.name} {c.type}" for c in table.columns)
            self._db.execute(f"CREATE TABLE {table.name} ({definition})")

    def append(self, table: _Table, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows of the scan (values in ``table.columns``' order)."""
        arrays = [
            pa.array(values, type=field.type)
            for values, field in zip(zip(*rows, strict=True), table.schema, strict=True)
        ]
        batch = pa.Table.from_arrays(arrays, schema=table.schema)  # noqa: F841 - read by name
        self._db.execute(table.insert)

    def deduplicate(self, table: _Table) -> int:
        """Keep one row per key (the scan may hand a row out twice); the rows dropped."""
        ((rows, keys),) = self.query(
            f"SELECT COUNT(*), COUNT(DISTINCT ({table.key})) FROM {table.name}"
        )
        if rows != keys:
            self._db.execute(
                f"CREATE OR REPLACE TABLE {table.name} AS "
                f"SELECT DISTINCT ON ({table.key}) * FROM {table.name}"
            )
        return int(rows - keys)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._db.execute(sql).fetchall()

    def close(self) -> None:
        self._db.close()


async def load(
    session: Session,
    settings: CassandraSettings,
    engine: EmbeddedEngine,
    *,
    readers: int = READERS,
) -> LoadCounts:
    """Scan both tables into ``engine``. A row that the scan hands out twice (it may, after
    splitting a range dense with tombstones) is kept once: rows are deduplicated by key."""
    keyspace = settings.keyspace
    orders_from = f"{keyspace}.{settings.orders_table}"
    orders = await _scan_into(session, orders_from, ORDERS, engine, readers=readers)
    parked_from = f"{keyspace}.{settings.dlq_table}"
    parked = await _scan_into(session, parked_from, PARKED, engine, readers=readers)
    return LoadCounts(orders, parked)


def scan_statement(cols: tuple[Column, ...], source: str) -> str:
    """The CQL that reads ``cols`` of the table ``source`` (``keyspace.table``), a token range
    at a time."""
    return (
        f"SELECT {', '.join(c.cql for c in cols)} "
        f"FROM {source} WHERE token(order_id) >= ? AND token(order_id) <= ?"
    )


async def _scan_into(
    session: Session, source: str, table: _Table, engine: EmbeddedEngine, *, readers: int
) -> int:
    prepared = await session.create_prepared(scan_statement(table.columns, source))
    rows: list[tuple[Any, ...]] = []
    inserting: asyncio.Future[None] | None = None
    count = 0
    pages = scan_pages(
        session,
        prepared,
        page_size=PAGE_SIZE,
        segments=SEGMENTS,
        parallel=readers,
        attempts=PAGE_ATTEMPTS,
    )
    async for page in pages:
        rows.extend(row.as_tuple() for row in page)
        if len(rows) >= BATCH_ROWS:
            if inserting is not None:
                await inserting
            count += len(rows)
            inserting = asyncio.ensure_future(asyncio.to_thread(engine.append, table, rows))
            rows = []
    if inserting is not None:
        await inserting
    if rows:
        count += len(rows)
        await asyncio.to_thread(engine.append, table, rows)
    return count - await asyncio.to_thread(engine.deduplicate, table)
