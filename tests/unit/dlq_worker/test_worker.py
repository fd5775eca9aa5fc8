"""The DLQ worker around its pass: the metrics and the readiness a pass sets, on fakes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from ecom_dlq_worker.reconcile import PassReport, Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_dlq_worker.worker import DlqWorker
from ecom_shared.errors import StoreUnavailable
from ecom_shared.events import Order, parse_event
from ecom_shared.observability.health import Telemetry
from tests.fakes import FakeDlq, FakeOrders
from tests.unit.dlq_worker.test_reconcile import NOW, payment
from tests.unit.shared.observability.test_metrics import value
from tests.unit.shared.test_events import ORDER, body


async def test_a_dlq_pass_sets_counts_gauges_and_readiness() -> None:
    orders, dlq = FakeOrders(), FakeDlq()
    await orders.upsert_order(parse_event(Order, body(ORDER, order_id=1), None), 1, NOW)
    await dlq.park(payment(1, 10), NOW, NOW)
    await dlq.park(payment(2, 20), NOW - timedelta(hours=5), NOW - timedelta(hours=5))
    await dlq.park(payment(3, 30), NOW - timedelta(minutes=1), NOW - timedelta(minutes=1))
    settings = WorkerSettings(max_age_seconds=3600)
    telemetry = Telemetry.create()

    async def probe() -> None:
        return None

    worker = DlqWorker(Reconciler(orders, dlq, settings, lambda: NOW), settings, telemetry, probe)
    report = await worker.run_pass()
    registry = telemetry.registry
    assert report.oldest_age_seconds == 5 * 3600
    assert value(registry, "ecom_payments_reconciled_total") == 1
    assert value(registry, "ecom_dlq_parked_payments") == 2
    assert value(registry, "ecom_dlq_stale_payments") == 1
    assert value(registry, "ecom_dlq_oldest_parked_age_seconds") == 5 * 3600
    assert value(registry, "ecom_dlq_passes_total", {"outcome": "ok"}) == 1
    assert value(registry, "ecom_dlq_pass_duration_seconds_count") == 1


async def test_the_pass_running_gauge_is_one_during_a_pass_and_zero_after() -> None:
    telemetry = Telemetry.create()
    seen: list[float] = []

    class Watched(Reconciler):
        async def run_pass(self, stop: asyncio.Event | None = None) -> PassReport:
            seen.append(value(telemetry.registry, "ecom_dlq_pass_running"))
            if len(seen) == 2:
                raise StoreUnavailable("scan timed out")
            return await super().run_pass(stop)

    async def probe() -> None:
        return None

    settings = WorkerSettings()
    worker = DlqWorker(Watched(FakeOrders(), FakeDlq(), settings), settings, telemetry, probe)
    assert value(telemetry.registry, "ecom_dlq_pass_running") == 0
    await worker.run_pass()
    assert value(telemetry.registry, "ecom_dlq_pass_running") == 0
    with pytest.raises(StoreUnavailable):
        await worker.run_pass()
    assert seen == [1, 1]
    assert value(telemetry.registry, "ecom_dlq_pass_running") == 0  # a failed pass ends too


async def test_a_failed_dlq_pass_marks_cassandra_down_and_a_probe_brings_it_back() -> None:
    broken = FakeDlq()
    broken.fail_scan = StoreUnavailable("scan timed out")
    telemetry = Telemetry.create()
    telemetry.health.started()
    answers = asyncio.Event()

    async def probe() -> None:
        if not answers.is_set():
            raise StoreUnavailable("ping timed out")

    settings = WorkerSettings(interval_seconds=0.05)
    worker = DlqWorker(
        Reconciler(FakeOrders(), broken, settings), settings, telemetry, probe, probe_seconds=0.01
    )
    with pytest.raises(ExceptionGroup):
        await worker.run_pass()
    assert value(telemetry.registry, "ecom_dlq_passes_total", {"outcome": "failed"}) == 1
    reason = telemetry.health.readiness()[1]["reason"]
    assert reason == "unreachable: cassandra: pass failed: StoreUnavailable: scan timed out"
    stop = asyncio.Event()
    answers.set()
    assert await worker._between_passes(stop) is False
    assert telemetry.health.readiness()[0]
