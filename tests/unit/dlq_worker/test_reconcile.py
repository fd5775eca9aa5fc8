"""The DLQ worker's pass on fake tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_dlq_worker.worker import DlqWorker
from ecom_shared.cassandra.store import ParkedPayment, UnreadableRow
from ecom_shared.events import Order, Payment, parse_event
from ecom_shared.observability.health import Telemetry
from tests.fakes import FakeDlq, FakeOrders
from tests.unit.shared.test_events import ORDER, PAYMENT, body

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def payment(order_id: int, payment_id: int) -> Payment:
    return parse_event(Payment, body(PAYMENT, order_id=order_id, payment_id=payment_id), None)


async def test_pass_joins_what_has_an_order_and_counts_what_waits() -> None:
    orders, dlq = FakeOrders(), FakeDlq()
    await orders.upsert_order(parse_event(Order, body(ORDER, order_id=1), None), 1, NOW)
    await dlq.park(payment(1, 10), NOW, NOW)
    await dlq.park(
        payment(2, 20), NOW - timedelta(hours=5), NOW - timedelta(hours=5)
    )  # old, order never came
    await dlq.park(payment(3, 30), NOW, NOW)
    reconciler = Reconciler(orders, dlq, WorkerSettings(max_age_seconds=3600), clock=lambda: NOW)

    report = await reconciler.run_pass()

    assert (report.scanned, report.reconciled, report.waiting, report.stale) == (3, 1, 2, 1)
    assert report.stale_ids == ["2/20"]
    assert orders.payments[1][2] == "dlq"
    assert set(dlq.rows) == {(2, 20), (3, 30)}
    assert dlq.rows[(3, 30)].attempts == 1
    again = await reconciler.run_pass()
    assert (again.reconciled, again.waiting) == (0, 2)
    assert dlq.rows[(3, 30)].attempts == 2


async def test_stub_rows_left_by_a_race_are_removed() -> None:
    orders, dlq = FakeOrders(), FakeDlq()
    dlq.rows[(5, 50)] = ParkedPayment(5, 50, None, None, 1)
    report = await Reconciler(orders, dlq, WorkerSettings()).run_pass()
    assert report.stubs_removed == 1
    assert dlq.rows == {}


async def test_an_unreadable_row_is_reported_skipped_and_counted() -> None:
    orders, dlq = FakeOrders(), FakeDlq()
    await orders.upsert_order(parse_event(Order, body(ORDER, order_id=1), None), 1, NOW)
    await dlq.park(payment(1, 10), NOW, NOW)
    dlq.unreadable.append(UnreadableRow(2, 20, "ValueError: year 10000 is out of range"))
    settings = WorkerSettings()
    telemetry = Telemetry.create()
    worker = DlqWorker(Reconciler(orders, dlq, settings), settings, telemetry, answers)
    with structlog.testing.capture_logs() as logs:
        report = await worker.run_pass()
    assert (report.scanned, report.unreadable, report.reconciled, report.failed) == (2, 1, 1, 0)
    [line] = [entry for entry in logs if entry["event"] == "dlq.row_unreadable"]
    assert (line["order_id"], line["payment_id"], line["outcome"]) == (2, 20, "skipped")
    assert line["problem"] == "ValueError: year 10000 is out of range"
    registry = telemetry.registry
    assert registry.get_sample_value("ecom_dlq_rows_unreadable_total") == 1
    assert registry.get_sample_value("ecom_dlq_parked_payments") == 1  # still in the table


async def answers() -> None:
    return None


async def test_a_failing_row_does_not_end_the_pass() -> None:
    orders, dlq = FakeOrders(), FakeDlq()
    await dlq.park(payment(1, 10), NOW, NOW)
    orders.fail_with = TimeoutError("cassandra timed out")
    report = await Reconciler(orders, dlq, WorkerSettings()).run_pass()
    assert (report.scanned, report.failed) == (1, 1)
    assert (1, 10) in dlq.rows
