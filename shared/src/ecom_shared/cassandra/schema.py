"""The tables: their columns (one definition, which both creates and checks them), their
creation and migration by ``ecom-setup``, and the check the services make at start.

Names come from settings (validated identifiers). Set-up never writes to a table it cannot use:
it compares the tables that exist with :data:`ORDERS` and :data:`DLQ` first (a column of ours
with another type stops it, naming the column: see :mod:`ecom_shared.cassandra.schema_check`), then
creates what is absent and adds the columns of ours that an existing table lacks, and never
changes a column's type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import acsylla

from ecom_shared.cassandra.schema_check import (
    Column,
    TableCheck,
    TableShape,
    compare,
    read_columns,
    require_compatible,
    require_complete,
)
from ecom_shared.cassandra.session import Session
from ecom_shared.observability.logs import get_logger
from ecom_shared.settings import CassandraSettings

log = get_logger(__name__)

ORDERS = TableShape(
    (
        Column("order_id", "bigint", "partition_key", 0),
        Column("customer_id", "bigint"),
        Column("item", "text"),
        Column("quantity", "int"),
        Column("price", "decimal"),
        Column("shipping_address", "text"),
        Column("order_status", "text"),
        Column("order_created_at", "timestamp"),
        Column("order_created_on", "date"),
        Column("order_version_at", "timestamp"),
        Column("order_ingested_at", "timestamp"),
        Column("payment_id", "bigint"),
        Column("payment_method", "text"),
        Column("card_last_four", "text"),
        Column("payment_status", "text"),
        Column("paid_at", "timestamp"),
        Column("payment_ingested_at", "timestamp"),
        Column("payment_source", "text"),
    )
)
"""One row per order: order columns from the order consumer, payment columns from the payment
consumer or the DLQ worker. ``order_created_at`` is the creation instant (a date-only
``creation_date`` taken as midnight UTC), ``order_created_on`` the date as sent."""

DLQ = TableShape(
    (
        Column("order_id", "bigint", "partition_key", 0),
        Column("payment_id", "bigint", "clustering", 0),
        Column("payment_method", "text"),
        Column("card_last_four", "text"),
        Column("payment_status", "text"),
        Column("paid_at", "timestamp"),
        Column("parked_at", "timestamp"),
        Column("attempts", "int"),
        Column("last_attempt_at", "timestamp"),
        Column("published_at", "timestamp"),
    )
)
"""Payments waiting for their order, keyed ``((order_id), payment_id)``. ``published_at`` is
the message's ``publishTime``: with the payment's fields it gives the version's write timestamp
(:func:`~ecom_shared.versions.payment_version_micros`), which the row is inserted with and which
every join writes the payment with and deletes the row with."""

_ORDERS_OPTIONS = (
    "comment = 'One row per order: order columns from the order consumer, payment columns "
    "from the payment consumer or the DLQ worker. Write timestamps are versions: see "
    "ecom_shared.versions.'"
)
_DLQ_OPTIONS = (
    "gc_grace_seconds = 900 AND compaction = {'class': 'SizeTieredCompactionStrategy', "
    "'tombstone_threshold': '0.2', 'tombstone_compaction_interval': '900', "
    "'unchecked_tombstone_compaction': 'true'}"
)
"""Every payment parked before its order is deleted once joined, so this table collects
tombstones as fast as payments arrive early; a read meeting 100,000 of them fails. They may be
purged sooner than on other tables because a deleted row that comes back (a replica that missed
the delete for longer than ``gc_grace_seconds``) is harmless: the worker joins it again (the
same payment values, the same version's write timestamp) and deletes it again. So: 15 minutes
of grace, and an SSTable whose droppable tombstones pass 20 % is compacted on its own once 15
minutes old (Cassandra's default waits a day, and skips SSTables it judges would not shrink)."""
_DLQ_COMMENT = "comment = 'Payments waiting for their order, joined and deleted by the DLQ worker'"


class _Table(NamedTuple):
    keyspace: str
    name: str
    setting: str
    """The variable that names the table."""
    shape: TableShape

    @property
    def qualified(self) -> str:
        return f"{self.keyspace}.{self.name}"


def _tables(settings: CassandraSettings) -> tuple[_Table, _Table]:
    """The orders table and the DLQ table, in that order."""
    ks = settings.keyspace
    return (
        _Table(ks, settings.orders_table, "ECOM_CASSANDRA__ORDERS_TABLE", ORDERS),
        _Table(ks, settings.dlq_table, "ECOM_CASSANDRA__DLQ_TABLE", DLQ),
    )


def schema_statements(settings: CassandraSettings) -> list[str]:
    """The keyspace and both tables, created unless they exist."""
    orders, dlq = _tables(settings)
    return [
        f"CREATE KEYSPACE IF NOT EXISTS {settings.keyspace} "
        f"WITH replication = {settings.replication}",
        f"CREATE TABLE IF NOT EXISTS {orders.qualified} (\n    {ORDERS.column_definitions()}\n) "
        f"WITH {_ORDERS_OPTIONS}",
        f"CREATE TABLE IF NOT EXISTS {dlq.qualified} (\n    {DLQ.column_definitions()}\n) "
        f"WITH {_DLQ_OPTIONS} AND {_DLQ_COMMENT}",
    ]


def migration_statements(checks: Sequence[TableCheck]) -> list[str]:
    """For the tables that existed before (``checks``: orders, then DLQ): the columns of ours
    they lack, added (a type is never changed), and the DLQ table's options (a no-op when it
    has them)."""
    statements = [
        f"ALTER TABLE {check.table} ADD IF NOT EXISTS "
        f"({', '.join(f'{c.name} {c.type}' for c in check.missing)})"
        for check in checks
        if check.exists and check.missing
    ]
    _, dlq = checks
    if dlq.exists:
        statements.append(f"ALTER TABLE {dlq.table} WITH {_DLQ_OPTIONS}")
    return statements


async def check_tables(session: Session, settings: CassandraSettings) -> list[TableCheck]:
    """Both tables, orders then DLQ, compared with the product's definition (reads only)."""
    return [
        compare(
            table.qualified,
            table.setting,
            table.shape,
            await read_columns(session, table.keyspace, table.name),
        )
        for table in _tables(settings)
    ]


async def apply_schema(session: Session, settings: CassandraSettings) -> None:
    """Create the keyspace and tables if they do not exist, and add the columns of ours that an
    existing table lacks. Safe to run any number of times.

    Raises :class:`~ecom_shared.cassandra.schema_check.SchemaMismatch`, before any statement is run,
    when an existing table has a column of ours with another type or another primary key.
    """
    before = await check_tables(session, settings)
    require_compatible(before)
    _log_extra_columns(before)
    for cql in [*schema_statements(settings), *migration_statements(before)]:
        await session.execute(acsylla.create_statement(cql))
    for check in before:
        if check.exists and check.missing:
            log.info("schema.migrated", table=check.table, added=[c.name for c in check.missing])
    # CREATE TABLE IF NOT EXISTS keeps a table made meanwhile by someone else: check again.
    require_complete(await check_tables(session, settings))
    log.info("schema.applied", keyspace=settings.keyspace)


async def check_schema(session: Session, settings: CassandraSettings) -> None:
    """Raise :class:`~ecom_shared.cassandra.schema_check.SchemaMismatch` unless both tables
    exist and can take every write the product makes: a service calls this at start, before it
    prepares a statement or writes anything."""
    checks = await check_tables(session, settings)
    require_complete(checks)
    _log_extra_columns(checks)


def _log_extra_columns(checks: Sequence[TableCheck]) -> None:
    for check in checks:
        if check.extra:
            log.info(
                "schema.extra_columns",
                table=check.table,
                columns=[f"{c.name} {c.describe()}" for c in check.extra],
                note="left alone: the product neither reads nor writes them",
            )
