"""The tables, created idempotently. Names come from settings (validated identifiers)."""

from __future__ import annotations

import acsylla

from ecom_shared.cassandra import Session
from ecom_shared.logs import get_logger
from ecom_shared.settings import CassandraSettings

log = get_logger(__name__)


_DLQ_OPTIONS = (
    "gc_grace_seconds = 900 AND compaction = {'class': 'SizeTieredCompactionStrategy', "
    "'tombstone_threshold': '0.2', 'tombstone_compaction_interval': '900', "
    "'unchecked_tombstone_compaction': 'true'}"
)
"""Every payment parked before its order is deleted once joined, so this table collects
tombstones as fast as payments arrive early; a read meeting 100,000 of them fails. They may be
purged sooner than on other tables because a deleted row that comes back (a replica that missed
the delete for longer than ``gc_grace_seconds``) is harmless: the worker joins it again (the
same payment values, the same event-time write timestamp) and deletes it again. So: 15 minutes
of grace, and an SSTable whose droppable tombstones pass 20 % is compacted on its own once 15
minutes old (Cassandra's default waits a day, and skips SSTables it judges would not shrink)."""


def schema_statements(settings: CassandraSettings) -> list[str]:
    ks, orders, dlq = settings.keyspace, settings.orders_table, settings.dlq_table
    return [
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {settings.replication}",
        f"""CREATE TABLE IF NOT EXISTS {ks}.{orders} (
            order_id bigint PRIMARY KEY,
            customer_id bigint,
            item text,
            quantity int,
            price decimal,
            shipping_address text,
            order_status text,
            order_created_at timestamp,
            order_version_at timestamp,
            order_ingested_at timestamp,
            payment_id bigint,
            payment_method text,
            card_last_four text,
            payment_status text,
            paid_at timestamp,
            payment_ingested_at timestamp,
            payment_source text
        ) WITH comment = 'One row per order: order columns from the order consumer, payment
 columns from the payment consumer or the DLQ worker. Write timestamps are event times.'""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.{dlq} (
            order_id bigint,
            payment_id bigint,
            payment_method text,
            card_last_four text,
            payment_status text,
            paid_at timestamp,
            parked_at timestamp,
            attempts int,
            last_attempt_at timestamp,
            PRIMARY KEY ((order_id), payment_id)
        ) WITH {_DLQ_OPTIONS}
          AND comment = 'Payments waiting for their order, joined and deleted by the DLQ worker'""",
        # Tables made by an earlier version get the same options (a no-op when they have them).
        f"ALTER TABLE {ks}.{dlq} WITH {_DLQ_OPTIONS}",
    ]


async def apply_schema(session: Session, settings: CassandraSettings) -> None:
    """Create the keyspace and tables if they do not exist. Safe to run any number of times."""
    for cql in schema_statements(settings):
        await session.execute(acsylla.create_statement(cql))
    log.info("schema.applied", keyspace=settings.keyspace)
