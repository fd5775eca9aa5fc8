"""What the report reads: the columns of the two tables the figures are computed from.

Both engines present the tables to the figures' SQL (:mod:`ecom_report.figures`) as two
relations with these columns and types, whatever they read them with:

- ``orders``: one row per order of the orders table;
- ``parked``: one row per payment waiting in the DLQ table.

Times are whole milliseconds since the epoch (what Cassandra keeps), so that every duration
is integer arithmetic that both SQL dialects spell alike. ``created_on`` is the order's
creation day as the app sent it (its own offset); for a row written before that column
existed it is the UTC day of ``created_ms``. Money is ``DECIMAL(38, 18)``: every price the
wire contract admits fits it (:data:`ecom_shared.events.Money`), and sums stay exact.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class Column(NamedTuple):
    name: str
    """The name the figures use."""
    type: str
    """Its SQL type, spelled as both engines accept it."""
    cql: str
    """How the embedded engine's scan selects it from Cassandra (the raw value, converted by
    the engine: see :mod:`ecom_report.embedded`)."""
    source: str
    """The table's own column it comes from."""


MONEY: Final = "DECIMAL(38, 18)"

ORDERS: Final = (
    Column("order_id", "BIGINT", "order_id", "order_id"),
    Column("customer_id", "BIGINT", "customer_id", "customer_id"),
    Column("item", "STRING", "item", "item"),
    Column("quantity", "INT", "quantity", "quantity"),
    # Cassandra writes the exact decimal as text (acsylla cannot read a decimal: see
    # ecom_shared.cassandra.cqltypes); the engine casts the text to DECIMAL(38, 18).
    Column("price", MONEY, "CAST(price AS text)", "price"),
    Column("order_status", "STRING", "order_status", "order_status"),
    Column("created_ms", "BIGINT", "toUnixTimestamp(order_created_at)", "order_created_at"),
    Column("created_on", "DATE", "order_created_on", "order_created_on"),
    Column("payment_id", "BIGINT", "payment_id", "payment_id"),
    Column("payment_method", "STRING", "payment_method", "payment_method"),
    Column("payment_status", "STRING", "payment_status", "payment_status"),
    Column("paid_ms", "BIGINT", "toUnixTimestamp(paid_at)", "paid_at"),
    Column("payment_source", "STRING", "payment_source", "payment_source"),
)

PARKED: Final = (
    Column("order_id", "BIGINT", "order_id", "order_id"),
    Column("payment_id", "BIGINT", "payment_id", "payment_id"),
    Column("payment_method", "STRING", "payment_method", "payment_method"),
    Column("payment_status", "STRING", "payment_status", "payment_status"),
    Column("parked_ms", "BIGINT", "toUnixTimestamp(parked_at)", "parked_at"),
    Column("attempts", "INT", "attempts", "attempts"),
)


def names(columns: tuple[Column, ...]) -> list[str]:
    return [column.name for column in columns]
