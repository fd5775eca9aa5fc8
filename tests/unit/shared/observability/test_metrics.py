"""The metric hooks, the readiness they feed, and the failure logs, on fakes."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from ecom_dlq_worker.reconcile import PassReport, Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_dlq_worker.worker import DlqWorker
from ecom_payment_consumer.handler import PaymentHandler
from ecom_producer.publish import PhasePublisher, Tally
from ecom_shared.cassandra.timed_store import TimedDlq, TimedOrders
from ecom_shared.errors import CASSANDRA, InvalidMessage, StoreUnavailable
from ecom_shared.events import EventType, Order, parse_event
from ecom_shared.observability.health import HealthState, Telemetry
from ecom_shared.observability.metrics import PaymentMetrics, ProducerMetrics, StoreMetrics
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.runtime.backoff import Backoff
from ecom_shared.runtime.consumer import UNREADY_AFTER_PULL_FAILURES
from ecom_shared.runtime.gate import DependencyGate
from tests.fakes import FakeDlq, FakeOrders, FakePublisher, received
from tests.polling import eventually
from tests.unit.dlq_worker.test_reconcile import payment
from tests.unit.producer.test_publishing import FlakyPublisher, planned
from tests.unit.shared.runtime.test_consumer import FAST, FAST_PACING, Harness, ok_handler
from tests.unit.shared.test_events import ORDER, PAYMENT, body

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SUB = {"subscription": "fake-sub"}


def value(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    found = registry.get_sample_value(name, labels or {})
    return 0.0 if found is None else found


def reported_up(health: HealthState, dependency: str) -> bool:
    """What ``/readyz`` says of ``dependency``."""
    return bool(health.readiness()[1]["checks"][dependency]["ok"])


async def test_consumer_counts_batches_and_settles_in_flight_to_zero() -> None:
    h = Harness(ok_handler, [received(b"{}") for _ in range(25)])
    registry = h.telemetry.registry
    async with h.running():
        await eventually(lambda: value(registry, "ecom_messages_acked_total", SUB) == 25)
    assert value(registry, "ecom_messages_received_total", SUB) == 25
    assert value(registry, "ecom_messages_in_flight", SUB) == 0


async def test_dead_letters_and_retries_are_counted_by_reason() -> None:
    async def judge(message: ReceivedMessage) -> None:
        if message.data == b"bad":
            raise InvalidMessage("invalid_json", "body: not JSON")
        raise RuntimeError("a bug")

    h = Harness(judge, [received(b"bad"), received(b"bug")])
    registry = h.telemetry.registry
    async with h.running():
        await eventually(lambda: h.sub.acked and h.sub.extended)
    dead = {**SUB, "reason": "invalid_json"}
    retried = {**SUB, "reason": "unexpected:RuntimeError"}
    assert value(registry, "ecom_messages_dead_lettered_total", dead) == 1
    assert value(registry, "ecom_messages_retried_total", retried) == 1
    assert value(registry, "ecom_messages_acked_total", SUB) == 1


async def test_consecutive_pull_failures_mark_pubsub_down_until_a_pull_succeeds() -> None:
    message = received(b"1")
    h = Harness(ok_handler, [])
    health = h.telemetry.health
    h.sub.fail_pulls = 1_000_000
    async with h.running():
        await eventually(lambda: not reported_up(health, "pubsub"))
        assert h.consumer.stats.pull_errors >= UNREADY_AFTER_PULL_FAILURES
        assert value(h.telemetry.registry, "ecom_pull_errors_total", SUB) >= 3
        h.sub.fail_pulls = 0
        h.sub.queue.append(message)
        await eventually(lambda: h.sub.acked == [message.ack_id])
        assert reported_up(health, "pubsub")


async def test_a_store_outage_marks_cassandra_down_until_the_probe_answers() -> None:
    outage = True

    async def handler(message: ReceivedMessage) -> None:
        if outage:
            raise StoreUnavailable("cassandra timed out")

    h = Harness(handler, [received(b"1")], probe_failures=1_000_000)
    health = h.telemetry.health
    async with h.running():
        await eventually(lambda: not reported_up(health, "cassandra"))
        assert health.readiness()[1]["checks"]["cassandra"]["reason"] == "StoreUnavailable"
        outage = False
        h.probe_failures = 0
        await eventually(lambda: reported_up(health, "cassandra"))


async def test_an_idle_consumer_notices_cassandra_down_through_its_probe() -> None:
    pacing = replace(FAST_PACING, probe_seconds=0.01)
    h = Harness(ok_handler, [], pacing=pacing, probe_failures=1_000_000)
    async with h.running():
        await eventually(lambda: not reported_up(h.telemetry.health, "cassandra"))
        pulls = h.sub.pulls
        await eventually(lambda: h.probes >= 3)
        assert h.sub.pulls <= pulls + FAST.pullers  # the gate closed: pulling stopped


async def test_the_gate_reopens_by_its_own_probe_while_pullers_wait_on_a_long_poll() -> None:
    telemetry = Telemetry.create()
    answers = asyncio.Event()
    failed_probes = 0

    async def probe() -> None:
        nonlocal failed_probes
        if not answers.is_set():
            failed_probes += 1
            raise StoreUnavailable("ping timed out")

    gate = DependencyGate({CASSANDRA: probe}, Backoff(0.01, 0.02), telemetry.health)
    gate.close(CASSANDRA, "write timed out")
    stop = asyncio.Event()
    watcher = asyncio.create_task(gate.watch(stop, 0.01))
    try:
        await eventually(lambda: failed_probes >= 3)  # the watcher probes with no puller asking
        assert not reported_up(telemetry.health, CASSANDRA)  # a failed probe keeps it closed
        answers.set()
        await eventually(lambda: reported_up(telemetry.health, CASSANDRA))  # reopened
        assert await asyncio.wait_for(gate.wait_open(stop), 1)
    finally:
        stop.set()
        await watcher


async def test_store_latency_is_observed_per_operation_failures_included() -> None:
    registry = CollectorRegistry()
    metrics = StoreMetrics(registry)
    fake = FakeOrders()
    orders, dlq = TimedOrders(fake, metrics), TimedDlq(FakeDlq(), metrics)
    await orders.upsert_order(parse_event(Order, body(ORDER, order_id=1), None), 1, NOW)
    assert await orders.order_exists(1)
    await dlq.park(payment(2, 20), NOW, NOW)
    fake.fail_with = StoreUnavailable("timed out")
    with pytest.raises(StoreUnavailable):
        await orders.order_exists(1)
    name = "ecom_cassandra_request_duration_seconds_count"
    assert value(registry, name, {"operation": "upsert_order"}) == 1
    assert value(registry, name, {"operation": "order_exists"}) == 2
    assert value(registry, name, {"operation": "dlq_park"}) == 1
    assert [p.payment_id async for p in dlq.scan(10, 1)] == [20]


def test_the_loop_histogram_exposes_cumulative_le_buckets_count_and_sum() -> None:
    registry = CollectorRegistry()
    series = StoreMetrics(registry).seconds.labels("set_payment")
    for seconds in (0.0004, 0.0005, 0.003, 12.0):
        series.observe(seconds)
    name, op = "ecom_cassandra_request_duration_seconds", {"operation": "set_payment"}
    assert value(registry, f"{name}_bucket", {**op, "le": "0.0005"}) == 2  # le is inclusive
    assert value(registry, f"{name}_bucket", {**op, "le": "0.002"}) == 2
    assert value(registry, f"{name}_bucket", {**op, "le": "0.005"}) == 3
    assert value(registry, f"{name}_bucket", {**op, "le": "5.0"}) == 3
    assert value(registry, f"{name}_bucket", {**op, "le": "+Inf"}) == 4
    assert value(registry, f"{name}_count", op) == 4
    assert value(registry, f"{name}_sum", op) == pytest.approx(12.0039)
    text = generate_latest(registry).decode()
    assert f'{name}_bucket{{le="0.001",operation="set_payment"}} 2.0' in text
    assert f"# TYPE {name} histogram" in text


async def test_parked_payments_are_counted() -> None:
    registry = CollectorRegistry()
    parked = PaymentMetrics(registry).parked
    handler = PaymentHandler(
        FakeOrders(), FakeDlq(), FakePublisher(), "dlq-payments", on_parked=parked.inc
    )
    await handler(received(body(PAYMENT, order_id=7)))
    assert value(registry, "ecom_payments_parked_total") == 1


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


async def test_published_messages_are_counted_by_kind_and_failures_mark_pubsub_down() -> None:
    publisher = FlakyPublisher()
    publisher.failures = 1
    telemetry = Telemetry.create()
    downs: list[bool] = []
    health = telemetry.health
    original_down = health.down

    def spy(dependency: str, reason: str) -> None:
        downs.append(True)
        original_down(dependency, reason)

    health.down = spy  # type: ignore[method-assign]
    phases = PhasePublisher(
        publisher,
        {EventType.ORDER: "orders", EventType.PAYMENT: "payments"},
        None,
        Tally(),
        metrics=ProducerMetrics(telemetry.registry),
        health=health,
    )
    await phases.publish([planned(EventType.ORDER, 1), planned(EventType.PAYMENT, 2)])
    assert downs == [True]  # the failed attempt marked Pub/Sub down...
    assert reported_up(health, "pubsub")  # ...and the accepted retry brought it back
    name = "ecom_messages_published_total"
    assert value(telemetry.registry, name, {"kind": "orders"}) == 1
    assert value(telemetry.registry, name, {"kind": "payments"}) == 1
