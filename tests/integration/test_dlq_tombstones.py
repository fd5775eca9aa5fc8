"""The DLQ table after many deletes, on the real Cassandra 5.0: its options as applied, and a
worker pass that reads past more tombstones than Cassandra lets one read meet."""

from __future__ import annotations

import asyncio

import acsylla
import pytest

from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_shared.cassandra.session import too_many_tombstones
from ecom_shared.clock import utc_now
from ecom_shared.events import Payment, parse_event
from ecom_shared.runtime.resources import Resources
from tests.integration.test_pipeline import store_orders_only
from tests.unit.shared.test_events import PAYMENT, body

TOMBSTONES = 120_000  # Cassandra's tombstone_failure_threshold is 100,000
BATCH = 200  # deletes per unlogged batch (each batch stays under batch_size_fail_threshold)
PARKED = 5


async def test_the_dlq_table_has_its_tombstone_options(resources: Resources) -> None:
    c = resources.settings.cassandra
    statement = acsylla.create_statement(
        "SELECT gc_grace_seconds, compaction FROM system_schema.tables "
        "WHERE keyspace_name = ? AND table_name = ?",
        parameters=2,
    )
    statement.bind_list([c.keyspace, c.dlq_table])
    found = (await resources.cql.execute(statement)).first()
    assert found is not None
    assert found.column_value("gc_grace_seconds") == 900
    compaction = dict(found.column_value("compaction"))
    assert compaction["class"].endswith("SizeTieredCompactionStrategy")
    assert compaction["tombstone_threshold"] == "0.2"
    assert compaction["tombstone_compaction_interval"] == "900"
    assert compaction["unchecked_tombstone_compaction"] == "true"


async def _delete_never_parked(res: Resources, count: int) -> None:
    """Delete ``count`` DLQ rows that were never written (orders 10^9 onwards): each delete
    leaves a row tombstone, as a joined payment's removal does."""
    c = res.settings.cassandra
    delete = await res.cql.create_prepared(
        f"DELETE FROM {c.keyspace}.{c.dlq_table} WHERE order_id = ? AND payment_id = ?"
    )
    slots = asyncio.Semaphore(16)

    async def one_batch(start: int) -> None:
        batch = acsylla.create_batch_unlogged()
        for order_id in range(start, min(start + BATCH, count)):
            batch.add_statement(delete.bind([10**9 + order_id, 1]))
        async with slots:
            await res.cql.execute_batch(batch)

    await asyncio.gather(*(one_batch(start) for start in range(0, count, BATCH)))


async def test_a_pass_reads_past_more_tombstones_than_one_read_may_meet(
    resources: Resources,
) -> None:
    attrs: dict[str, str] = {}
    now = utc_now()
    for order_id in range(1, PARKED + 1):
        payment = parse_event(
            Payment, body(PAYMENT, order_id=order_id, payment_id=100 + order_id), attrs
        )
        await resources.dlq.park(payment, now, now)
    await _delete_never_parked(resources, TOMBSTONES)
    await store_orders_only(resources, PARKED)

    # Cassandra does refuse to read the whole table in one go...
    c = resources.settings.cassandra
    whole = acsylla.create_statement(f"SELECT order_id FROM {c.keyspace}.{c.dlq_table}")
    with pytest.raises(acsylla.errors.CassErrorServerReadFailure) as refused:
        await resources.cql.execute(whole)
    assert too_many_tombstones(refused.value), str(refused.value)

    # ...yet a pass that starts from one range for the whole ring completes every parked payment.
    settings = WorkerSettings(token_segments=1)
    report = await Reconciler(resources.orders, resources.dlq, settings).run_pass()
    assert (report.scanned, report.reconciled, report.waiting, report.failed) == (
        PARKED,
        PARKED,
        0,
        0,
    )
    left = await resources.dlq.parked_for_many(list(range(1, PARKED + 1)))
    assert left == {}
