"""The crash hook: off by default, fires on the N-th reach of its one point, and each of the
three points sits exactly between a durable write and what must follow it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import NoReturn

import pytest
import structlog
from pydantic import ValidationError

from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import DlqWorkerSettings, WorkerSettings
from ecom_payment_consumer.handler import PaymentHandler
from ecom_shared.events import Order, Payment, parse_event
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.pubsub.deadletter import DeadLetters
from ecom_shared.runtime.consumer import Consumer
from ecom_shared.runtime.faults import CrashHook, CrashPoint, FaultSettings
from ecom_shared.settings import ConsumerServiceSettings
from tests.fakes import FakeDlq, FakeOrders, FakePublisher, FakeSubscription, received
from tests.unit.payment_consumer.test_handler import OrderLandsWhileParking
from tests.unit.shared.runtime.test_consumer import FAST, FAST_PACING
from tests.unit.shared.test_events import ORDER, PAYMENT, body

NOW = datetime(2026, 6, 1, tzinfo=UTC)


class Crashed(BaseException):
    """Stands in for SIGKILL: ends the flow where the hook fired."""


class Recorder:
    def __init__(self) -> None:
        self.fired: list[CrashPoint] = []

    def die(self, point: CrashPoint) -> NoReturn:
        self.fired.append(point)
        raise Crashed(point)


def test_unset_by_default_and_off_means_never_firing() -> None:
    assert FaultSettings().crash_at is None
    assert ConsumerServiceSettings().faults == FaultSettings()
    recorder = Recorder()
    hook = CrashHook(None, 1, recorder.die)
    for point in CrashPoint:
        for _ in range(1000):
            hook.reached(point)
    assert recorder.fired == []
    with structlog.testing.capture_logs() as logs:
        CrashHook.from_settings(FaultSettings())
    assert logs == []  # nothing armed, nothing said


def test_fires_on_the_nth_reach_of_its_own_point_only() -> None:
    recorder = Recorder()
    hook = CrashHook(CrashPoint.AFTER_PARK_BEFORE_ACK, 3, recorder.die)
    for _ in range(5):
        hook.reached(CrashPoint.AFTER_WRITE_BEFORE_ACK)  # another point: not counted
    hook.reached(CrashPoint.AFTER_PARK_BEFORE_ACK)
    hook.reached(CrashPoint.AFTER_PARK_BEFORE_ACK)
    assert recorder.fired == []
    with pytest.raises(Crashed):
        hook.reached(CrashPoint.AFTER_PARK_BEFORE_ACK)
    assert recorder.fired == [CrashPoint.AFTER_PARK_BEFORE_ACK]


def test_armed_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECOM_FAULTS__CRASH_AT", "after_reconcile_before_delete")
    monkeypatch.setenv("ECOM_FAULTS__CRASH_AFTER", "4")
    faults = DlqWorkerSettings().faults
    assert faults.crash_at is CrashPoint.AFTER_RECONCILE_BEFORE_DELETE
    assert faults.crash_after == 4
    with structlog.testing.capture_logs() as logs:
        CrashHook.from_settings(faults)
    assert [(e["event"], e["point"], e["after"]) for e in logs] == [
        ("fault.armed", "after_reconcile_before_delete", 4)
    ]
    monkeypatch.setenv("ECOM_FAULTS__CRASH_AT", "somewhere_else")
    with pytest.raises(ValidationError):
        ConsumerServiceSettings()


def test_firing_logs_the_point_and_dies_by_sigkill() -> None:
    script = (
        "from ecom_shared.runtime.faults import NO_CRASH, CrashHook, CrashPoint\n"
        "from ecom_shared.observability.logs import configure_logging\n"
        "from ecom_shared.settings import LogSettings\n"
        "configure_logging(LogSettings(), service='t')\n"
        "for point in CrashPoint:\n"
        "    NO_CRASH.reached(point)\n"
        "print('unarmed: no crash', flush=True)\n"
        "CrashHook(CrashPoint.AFTER_WRITE_BEFORE_ACK).reached(CrashPoint.AFTER_WRITE_BEFORE_ACK)\n"
        "print('survived', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == -9, done.stderr
    assert "unarmed: no crash" in done.stdout  # the normal runs' hook passes every point
    assert "survived" not in done.stdout
    [line] = [json.loads(x) for x in done.stdout.splitlines() if "fault.crash" in x]
    assert line["point"] == "after_write_before_ack"
    assert line["level"] == "critical"


async def test_consumer_point_is_after_the_writes_and_before_the_acks() -> None:
    written: list[str] = []

    async def write(message: ReceivedMessage) -> None:
        written.append(message.ack_id)

    recorder = Recorder()
    messages = [received(b"{}") for _ in range(5)]
    sub = FakeSubscription(messages)
    consumer = Consumer(
        sub,
        write,
        DeadLetters(FakePublisher(), "dead-letter"),
        FAST.model_copy(update={"pullers": 1}),
        ack_deadline_seconds=60,
        probe=_probe,
        pacing=FAST_PACING,
        crash=CrashHook(CrashPoint.AFTER_WRITE_BEFORE_ACK, 1, recorder.die),
    )
    with pytest.RaisesGroup(Crashed, flatten_subgroups=True):
        await asyncio.wait_for(consumer.run(asyncio.Event()), 5)
    assert sorted(written) == sorted(m.ack_id for m in messages)
    assert sub.acked == []
    assert recorder.fired == [CrashPoint.AFTER_WRITE_BEFORE_ACK]


async def _probe() -> None:
    return None


async def test_park_point_is_after_the_insert_and_before_the_announcement() -> None:
    orders, dlq, publisher, recorder = FakeOrders(), FakeDlq(), FakePublisher(), Recorder()
    handler = PaymentHandler(
        orders,
        dlq,
        publisher,
        "dlq-payments",
        crash=CrashHook(CrashPoint.AFTER_PARK_BEFORE_ACK, 1, recorder.die),
    )
    with pytest.raises(Crashed):
        await handler(received(body(PAYMENT, order_id=1, payment_id=10)))
    assert list(dlq.rows) == [(1, 10)]
    assert publisher.sent == []


async def test_reconcile_point_is_after_the_row_write_and_before_the_dlq_delete() -> None:
    orders, dlq, recorder = FakeOrders(), FakeDlq(), Recorder()
    await orders.upsert_order(parse_event(Order, body(ORDER, order_id=1), None), 1, NOW)
    await dlq.park(parse_event(Payment, body(PAYMENT, order_id=1, payment_id=10), None), NOW, NOW)
    reconciler = Reconciler(
        orders,
        dlq,
        WorkerSettings(),
        crash=CrashHook(CrashPoint.AFTER_RECONCILE_BEFORE_DELETE, 1, recorder.die),
    )
    with pytest.RaisesGroup(Crashed, flatten_subgroups=True):
        await reconciler.run_pass()
    assert orders.payments[1][2] == "dlq"
    assert (1, 10) in dlq.rows


async def test_a_join_after_parking_crashes_at_the_reconcile_point_too() -> None:
    """The payment consumer joins a payment whose order landed while it parked it: the same
    completion as the worker's, so the same point between the row write and the DLQ delete."""
    order = parse_event(Order, body(ORDER, order_id=1), None)
    orders, dlq, recorder = OrderLandsWhileParking(order), FakeDlq(), Recorder()
    handler = PaymentHandler(
        orders,
        dlq,
        FakePublisher(),
        "dlq-payments",
        crash=CrashHook(CrashPoint.AFTER_RECONCILE_BEFORE_DELETE, 1, recorder.die),
    )
    with pytest.raises(Crashed):
        await handler(received(body(PAYMENT, order_id=1, payment_id=10)))
    assert orders.payments[1][2] == "stream"
    assert (1, 10) in dlq.rows
    assert recorder.fired == [CrashPoint.AFTER_RECONCILE_BEFORE_DELETE]
