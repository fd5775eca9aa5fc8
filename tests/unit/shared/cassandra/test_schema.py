"""The tables' definition, and the comparison of an existing table with it."""

from __future__ import annotations

import re

import pytest

from ecom_shared.cassandra.schema import DLQ, ORDERS, migration_statements, schema_statements
from ecom_shared.cassandra.schema_check import (
    Column,
    SchemaMismatch,
    TableCheck,
    TableShape,
    compare,
    require_compatible,
    require_complete,
)
from ecom_shared.settings import CassandraSettings

ORDERS_TABLE = "ecom_store.order_payments"
ORDERS_SETTING = "ECOM_CASSANDRA__ORDERS_TABLE"

# The original course project's table, as system_schema.columns lists it.
ORIGINAL_FACTS = [
    Column("order_id", "int", "partition_key", 0),
    Column("customer_id", "int"),
    Column("item", "text"),
    Column("quantity", "int"),
    Column("price", "double"),
    Column("shipping_address", "text"),
    Column("order_status", "text"),
    Column("creation_date", "text"),
    Column("payment_id", "int"),
    Column("payment_method", "text"),
    Column("card_last_four", "text"),
    Column("payment_status", "text"),
    Column("payment_datetime", "text"),
]


def as_listed(shape: TableShape) -> list[Column]:
    """A table made from ``shape``, its columns in system_schema's order (by name)."""
    return sorted(shape.columns, key=lambda column: column.name)


def without(shape: TableShape, *names: str) -> list[Column]:
    return [column for column in as_listed(shape) if column.name not in names]


def check_orders(found: list[Column]) -> TableCheck:
    return compare(ORDERS_TABLE, ORDERS_SETTING, ORDERS, found)


# ---- The definition ----------------------------------------------------------------------


def test_the_orders_table_keeps_the_creation_date_as_sent_beside_its_instant() -> None:
    assert ORDERS.types["order_created_at"] == "timestamp"
    assert ORDERS.types["order_created_on"] == "date"
    assert ORDERS.partition_key == ("order_id",)
    assert ORDERS.clustering == ()
    assert (DLQ.partition_key, DLQ.clustering) == (("order_id",), ("payment_id",))


@pytest.mark.parametrize(("index", "shape"), [(1, ORDERS), (2, DLQ)])
def test_create_table_is_written_from_the_definition_the_check_uses(
    index: int, shape: TableShape
) -> None:
    create = schema_statements(CassandraSettings())[index]
    body = create[create.index("(") + 1 : create.rindex(")")]
    declared = re.findall(r"^\s*([a-z_]+) ([a-z]+),$", body, re.MULTILINE)
    assert dict(declared) == shape.types
    key = "((order_id))" if shape is ORDERS else "((order_id), payment_id)"
    assert f"PRIMARY KEY {key}" in create


# ---- The comparison ----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [ORDERS, DLQ])
def test_a_table_made_by_this_version_is_complete(shape: TableShape) -> None:
    check = compare("ks.t", "SETTING", shape, as_listed(shape))
    assert check.complete
    assert (check.differing, check.missing, check.extra) == ((), (), ())
    require_complete([check])


def test_the_original_projects_table_is_refused_naming_each_differing_column() -> None:
    check = check_orders(ORIGINAL_FACTS)
    assert not check.compatible
    assert {(d.column, d.expected, d.found) for d in check.differing} == {
        ("order_id", "bigint (partition key)", "int (partition key)"),
        ("customer_id", "bigint", "int"),
        ("price", "decimal", "double"),
        ("payment_id", "bigint", "int"),
    }
    with pytest.raises(SchemaMismatch) as raised:
        require_compatible([check])
    message = str(raised.value)
    assert message.startswith(f"table {ORDERS_TABLE} cannot hold what this product writes")
    for line in (
        "price expected decimal, found double",
        "customer_id expected bigint, found int",
        "order_id expected bigint (partition key), found int (partition key)",
    ):
        assert line in message
    # Its times as text are named too, as columns the product does not know.
    assert "creation_date text" in message
    assert "payment_datetime text" in message
    assert "order_created_on date" in message  # what it lacks
    assert ORDERS_SETTING in message
    assert not raised.value.retriable
    assert raised.value.checks == (check,)


def test_the_refusal_reads_as_one_line() -> None:
    with pytest.raises(SchemaMismatch) as raised:
        require_compatible([check_orders(ORIGINAL_FACTS)])
    assert str(raised.value) == (
        "table ecom_store.order_payments cannot hold what this product writes: "
        "order_id expected bigint (partition key), found int (partition key); "
        "customer_id expected bigint, found int; price expected decimal, found double; "
        "payment_id expected bigint, found int. "
        "It lacks order_created_at timestamp, order_created_on date, order_version_at timestamp, "
        "order_ingested_at timestamp, paid_at timestamp, payment_ingested_at timestamp, "
        "payment_source text. "
        "It has columns the product does not know: creation_date text, payment_datetime text. "
        "Nothing was written. Name another table (ECOM_CASSANDRA__ORDERS_TABLE), or move this "
        "table's data out and drop it: ecom-setup adds missing columns, never changes a type."
    )


def test_a_missing_column_is_migrated_by_set_up_and_sends_a_service_to_it() -> None:
    previous = check_orders(without(ORDERS, "order_created_on"))
    assert previous.compatible
    assert not previous.complete
    assert previous.missing == (Column("order_created_on", "date"),)
    require_compatible([previous])
    dlq = compare("ecom_store.payments_dlq", "ECOM_CASSANDRA__DLQ_TABLE", DLQ, as_listed(DLQ))
    add, options = migration_statements([previous, dlq])
    assert add == f"ALTER TABLE {ORDERS_TABLE} ADD IF NOT EXISTS (order_created_on date)"
    assert options.startswith(f"ALTER TABLE {dlq.table} WITH gc_grace_seconds = 900 AND ")
    with pytest.raises(SchemaMismatch, match=r"lacks order_created_on date: run ecom-setup$"):
        require_complete([previous, dlq])


def test_several_missing_columns_are_added_in_one_statement() -> None:
    check = check_orders(without(ORDERS, "order_created_on", "payment_source"))
    absent_dlq = compare("ks.dlq", "S", DLQ, [])
    assert migration_statements([check, absent_dlq]) == [
        f"ALTER TABLE {ORDERS_TABLE} ADD IF NOT EXISTS (order_created_on date, payment_source text)"
    ]


def test_a_table_that_does_not_exist_is_created_not_altered() -> None:
    check = check_orders([])
    assert check.compatible
    assert not check.exists
    assert migration_statements([check, compare("ks.dlq", "S", DLQ, [])]) == []
    with pytest.raises(
        SchemaMismatch, match=f"table {ORDERS_TABLE} does not exist: run ecom-setup"
    ):
        require_complete([check])


def test_columns_the_product_does_not_know_are_allowed() -> None:
    extra = [Column("loyalty_tier", "text"), Column("discount", "double")]
    check = check_orders([*as_listed(ORDERS), *extra])
    assert check.complete
    assert [column.name for column in check.extra] == ["discount", "loyalty_tier"]
    require_complete([check])


def test_a_dlq_table_with_another_primary_key_is_refused() -> None:
    found = [
        Column("payment_id", "bigint") if c.name == "payment_id" else c for c in as_listed(DLQ)
    ]
    check = compare("ks.payments_dlq", "ECOM_CASSANDRA__DLQ_TABLE", DLQ, found)
    assert not check.compatible
    with pytest.raises(SchemaMismatch) as raised:
        require_complete([check])
    message = str(raised.value)
    assert "payment_id expected bigint (clustering column), found bigint" in message
    assert "primary key expected ((order_id), payment_id), found ((order_id))" in message


def test_a_missing_key_column_cannot_be_added() -> None:
    check = compare("ks.payments_dlq", "S", DLQ, without(DLQ, "payment_id"))
    assert not check.compatible
    assert Column("payment_id", "bigint", "clustering", 0) not in check.missing
    assert check.differing[-1].column == "primary key"


def test_an_extra_key_column_is_refused() -> None:
    found = [*as_listed(ORDERS), Column("region", "text", "partition_key", 1)]
    check = check_orders(found)
    assert not check.compatible
    assert check.differing[-1].describe() == (
        "primary key expected ((order_id)), found ((order_id, region))"
    )


def test_a_static_column_is_not_a_regular_one() -> None:
    found = [
        Column("attempts", "int", "static") if c.name == "attempts" else c for c in as_listed(DLQ)
    ]
    check = compare("ks.payments_dlq", "S", DLQ, found)
    assert [d.describe() for d in check.differing] == ["attempts expected int, found int (static)"]


def test_every_table_is_reported_in_one_error() -> None:
    orders = check_orders(ORIGINAL_FACTS)
    dlq = compare("ks.payments_dlq", "ECOM_CASSANDRA__DLQ_TABLE", DLQ, [Column("x", "text")])
    with pytest.raises(SchemaMismatch) as raised:
        require_compatible([orders, dlq])
    assert f"table {ORDERS_TABLE} " in str(raised.value)
    assert "table ks.payments_dlq " in str(raised.value)
