"""Existing tables on the real node: the original project's table stops set-up and the
services before anything is written; a table of the previous version is migrated by set-up."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import acsylla
import pytest
from gcloud.aio.pubsub import PublisherClient

from ecom_shared.cassandra.schema import ORDERS, check_tables
from ecom_shared.cassandra.schema_check import Column, SchemaMismatch, read_columns
from ecom_shared.cassandra.session import Session, cassandra_session
from ecom_shared.pubsub.client import http_session
from ecom_shared.pubsub.provision import provision
from ecom_shared.runtime.resources import open_resources
from ecom_shared.settings import ServiceSettings
from tests.infra import InfraUnderTest

ORIGINAL_TABLE = """CREATE TABLE {table} (
    order_id int PRIMARY KEY, customer_id int, item text, quantity int, price double,
    shipping_address text, order_status text, creation_date text, payment_id int,
    payment_method text, card_last_four text, payment_status text, payment_datetime text)"""
ORIGINAL_ROW = """INSERT INTO {table} (order_id, customer_id, item, quantity, price,
    shipping_address, order_status, creation_date) VALUES (17, 343, 'Laptop', 3,
    929.6972748780319, '123 Main St, City A, Country', 'Shipped', '2023-09-01')"""
# The orders table as the previous version of the product made it: no order_created_on.
PREVIOUS_ORDERS = "CREATE TABLE {table} ({columns}, PRIMARY KEY ((order_id)))"
PREVIOUS_ROW = "INSERT INTO {table} (order_id, item, payment_source) VALUES (5, 'lamp', 'stream')"


def on_table(infra: InfraUnderTest, orders_table: str) -> ServiceSettings:
    base = infra.settings()
    cassandra = base.cassandra.model_copy(update={"orders_table": orders_table})
    return base.model_copy(update={"cassandra": cassandra})


async def run_cql(session: Session, *statements: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for cql in statements:
        result = await session.execute(acsylla.create_statement(cql))
        rows = [row.as_dict() for row in result]
    return rows


async def existing_table(settings: ServiceSettings, create: str, insert: str) -> None:
    c = settings.cassandra
    table = f"{c.keyspace}.{c.orders_table}"
    async with cassandra_session(c) as session:
        await run_cql(
            session,
            f"CREATE KEYSPACE {c.keyspace} WITH replication = {c.replication}",
            create.format(table=table),
            insert.format(table=table),
        )


async def snapshot(
    settings: ServiceSettings,
) -> tuple[list[Column], list[Column], list[dict[str, object]]]:
    """The orders table's columns, the DLQ table's columns, and the orders table's rows."""
    c = settings.cassandra
    async with cassandra_session(c) as session:
        orders = await read_columns(session, c.keyspace, c.orders_table)
        dlq = await read_columns(session, c.keyspace, c.dlq_table)
        rows = await run_cql(session, f"SELECT * FROM {c.keyspace}.{c.orders_table}")
    return orders, dlq, rows


async def topics(settings: ServiceSettings) -> set[str]:
    project = settings.pubsub.project_id
    async with http_session() as session:
        listed = await PublisherClient(session=session).list_topics(f"projects/{project}")
    return {topic["name"].rsplit("/", 1)[1] for topic in listed.get("topics", [])}


async def test_set_up_refuses_the_original_projects_table_and_writes_nothing(
    infra: InfraUnderTest,
) -> None:
    settings = on_table(infra, "orders_payments_facts")
    await existing_table(settings, ORIGINAL_TABLE, ORIGINAL_ROW)
    before = await snapshot(settings)

    with pytest.raises(SchemaMismatch) as raised:
        await provision(settings)  # the whole set-up: schema first, then topics

    message = str(raised.value)
    table = f"{settings.cassandra.keyspace}.orders_payments_facts"
    assert message.startswith(f"table {table} cannot hold what this product writes:")
    for line in (
        "order_id expected bigint (partition key), found int (partition key)",
        "customer_id expected bigint, found int",
        "price expected decimal, found double",
        "payment_id expected bigint, found int",
    ):
        assert line in message
    assert "creation_date text, payment_datetime text" in message
    after = await snapshot(settings)
    assert after == before  # no column added, no row written, no DLQ table created
    assert after[1] == []
    assert len(after[2]) == 1
    assert await topics(settings) & {settings.pubsub.orders_topic} == set()


async def test_services_refuse_the_original_projects_table_at_start(infra: InfraUnderTest) -> None:
    settings = on_table(infra, "orders_payments_facts")
    await existing_table(settings, ORIGINAL_TABLE, ORIGINAL_ROW)
    with pytest.raises(SchemaMismatch, match="price expected decimal, found double"):
        async with open_resources(settings):
            pytest.fail("resources opened on a table of other types")


async def test_a_previous_versions_table_is_migrated_by_set_up(infra: InfraUnderTest) -> None:
    settings = infra.settings()
    previous = ", ".join(
        f"{column.name} {column.type}"
        for column in ORDERS.columns
        if column.name != "order_created_on"
    )
    await existing_table(settings, PREVIOUS_ORDERS.replace("{columns}", previous), PREVIOUS_ROW)

    with pytest.raises(SchemaMismatch, match=r"lacks order_created_on date: run ecom-setup"):
        async with open_resources(settings):
            pytest.fail("resources opened on a table without order_created_on")

    await provision(settings)
    await provision(settings)  # idempotent
    assert settings.pubsub.orders_topic in await topics(settings)

    c = settings.cassandra
    async with cassandra_session(c) as session:
        checks = await check_tables(session, c)
        rows = await run_cql(
            session, f"SELECT order_id, item, order_created_on FROM {c.keyspace}.{c.orders_table}"
        )
    assert [check.complete for check in checks] == [True, True]
    assert rows == [{"order_id": 5, "item": "lamp", "order_created_on": None}]
    async with open_resources(settings) as resources:
        assert resources.settings is settings  # the services start on it now


async def test_set_up_is_one_clear_line_and_exit_code_1(infra: InfraUnderTest) -> None:
    settings = on_table(infra, "orders_payments_facts")
    await existing_table(settings, ORIGINAL_TABLE, ORIGINAL_ROW)
    env = {
        **infra.environment(settings),
        "ECOM_CASSANDRA__ORDERS_TABLE": "orders_payments_facts",
        "ECOM_LOG__JSON_OUTPUT": "true",
    }
    setup = Path(sys.executable).with_name("ecom-setup")
    process = await asyncio.create_subprocess_exec(
        str(setup),
        "--only",
        "schema",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 1, stderr
    events = [json.loads(line) for line in stdout.decode().splitlines()]
    failures = [e for e in events if e["level"] in ("error", "critical")]
    assert len(failures) == 1, failures
    assert "price expected decimal, found double" in json.dumps(failures[0])
    assert stderr == b""
