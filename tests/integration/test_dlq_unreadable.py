"""DLQ rows the worker cannot use, on the real Cassandra 5.0: each is reported and skipped,
and the pass goes on to the rows after it in token order."""

from __future__ import annotations

import acsylla
import structlog

from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_dlq_worker.worker import DlqWorker
from ecom_shared.clock import utc_now
from ecom_shared.events import Payment, parse_event
from ecom_shared.observability.health import Telemetry
from ecom_shared.runtime.resources import Resources
from tests.integration.test_pipeline import row, store_orders_only
from tests.unit.shared.test_events import PAYMENT, body

JOINABLE = 1  # token 6292367497774912474: high in the ring
# Tokens -8218881827949364593 and -8048510690352527683: both scanned before the joinable row.
BAD_TIME, NO_TIME = 2, 3
YEAR_10000 = 253_402_300_800_000  # milliseconds: a CQL timestamp no Python datetime can hold


async def test_a_pass_reports_unreadable_rows_and_joins_the_row_after_them(
    resources: Resources,
) -> None:
    c = resources.settings.cassandra
    table = f"{c.keyspace}.{c.dlq_table}"
    joinable = parse_event(Payment, body(PAYMENT, order_id=JOINABLE, payment_id=10), None)
    await resources.dlq.park(joinable, utc_now(), utc_now())
    await store_orders_only(resources, JOINABLE)
    # Written as another client (or a hand repair) could: the driver refuses to decode the
    # first row's paid_at; the second has payment fields but no paid_at.
    columns = "order_id, payment_id, payment_method, payment_status"
    for cql in (
        f"INSERT INTO {table} ({columns}, paid_at) "
        f"VALUES ({BAD_TIME}, 20, 'Credit Card', 'Completed', {YEAR_10000})",
        f"INSERT INTO {table} ({columns}) VALUES ({NO_TIME}, 30, 'Credit Card', 'Completed')",
    ):
        await resources.cql.execute(acsylla.create_statement(cql))
    tokens = await _tokens(resources, table)
    assert tokens[BAD_TIME] < tokens[JOINABLE]
    assert tokens[NO_TIME] < tokens[JOINABLE]

    settings = WorkerSettings()
    telemetry = Telemetry.create()
    worker = DlqWorker(
        Reconciler(resources.orders, resources.dlq, settings), settings, telemetry, _answers
    )
    with structlog.testing.capture_logs() as logs:
        report = await worker.run_pass()

    assert (report.scanned, report.reconciled, report.unreadable, report.failed) == (3, 1, 2, 0)
    joined = await row(resources, JOINABLE)
    assert joined is not None
    assert (joined["payment_id"], joined["payment_source"]) == (10, "dlq")
    reported = {
        (entry["order_id"], entry["payment_id"]): entry["problem"]
        for entry in logs
        if entry["event"] == "dlq.row_unreadable"
    }
    assert reported == {
        (BAD_TIME, 20): "ValueError: year 10000 is out of range",
        (NO_TIME, 30): "ValueError: payment fields missing: paid_at",
    }
    assert telemetry.registry.get_sample_value("ecom_dlq_rows_unreadable_total") == 2
    # Left in place for someone to repair; the order consumer's look leaves them out too.
    assert set(await _tokens(resources, table)) == {BAD_TIME, NO_TIME}
    assert await resources.dlq.parked_for_many([BAD_TIME, NO_TIME]) == {}


async def _tokens(res: Resources, table: str) -> dict[int, int]:
    statement = acsylla.create_statement(f"SELECT order_id, token(order_id) AS t FROM {table}")
    result = await res.cql.execute(statement)
    return {found.column_value("order_id"): found.column_value("t") for found in result}


async def _answers() -> None:
    return None
