"""The tables, created idempotently. Names come from settings (validated identifiers)."""

from __future__ import annotations

import acsylla

from ecom_shared.cassandra import Session
from ecom_shared.logs import get_logger
from ecom_shared.settings import CassandraSettings

log = get_logger(__name__)


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
        ) WITH gc_grace_seconds = 3600
          AND comment = 'Payments waiting for their order, joined and deleted by the DLQ worker'""",
    ]


async def apply_schema(session: Session, settings: CassandraSettings) -> None:
    """Create the keyspace and tables if they do not exist. Safe to run any number of times."""
    for cql in schema_statements(settings):
        await session.execute(acsylla.create_statement(cql))
    log.info("schema.applied", keyspace=settings.keyspace)
