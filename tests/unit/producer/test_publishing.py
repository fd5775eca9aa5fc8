"""Publishing: the producer's pacing, phases and retries, the manifest lines it writes, and
what it counts."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence

import pytest

from ecom_producer.planned import Label, Planned
from ecom_producer.publish import PHASE_GAP_SECONDS, PhasePublisher, RateLimiter, Tally
from ecom_shared.errors import PublishFailed
from ecom_shared.events import EventType
from ecom_shared.observability.health import Telemetry
from ecom_shared.observability.metrics import ProducerMetrics
from ecom_shared.pubsub.client import OutgoingMessage
from ecom_verifier.manifest import (
    expected_state,
    malformed_record,
    order_record,
    payment_record,
    read_records,
)
from tests.fakes import FakePublisher
from tests.unit.shared.observability.test_metrics import reported_up, value


async def test_rate_limiter_spaces_messages_by_the_clock() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    limiter = RateLimiter(1000, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await limiter.admit(500)
    assert slept == [0.5, 0.5]  # 500 messages at 1,000/s take half a second each


class FlakyPublisher(FakePublisher):
    async def publish(self, topic: str, messages: object) -> list[str]:
        if self.failures:
            self.failures -= 1
            raise PublishFailed("emulator restarting")
        return await super().publish(topic, messages)  # type: ignore[arg-type]


def planned(kind: EventType, n: int) -> Planned:
    label: Label = "orders" if kind is EventType.ORDER else "payments"
    return Planned(kind, f"{n}".encode(), json.dumps({"kind": kind.value, "n": n}), label)


async def test_phase_is_retried_and_recorded_once_after_it_was_accepted() -> None:
    publisher = FlakyPublisher()
    publisher.failures = 2
    manifest = io.StringIO()
    phases = PhasePublisher(
        publisher,
        {EventType.ORDER: "orders", EventType.PAYMENT: "payments"},
        manifest,
        Tally(),
        attempts=5,
    )
    phase = [planned(EventType.ORDER, 1), planned(EventType.PAYMENT, 2)]
    await phases.publish(phase)
    assert [m.data for m in publisher.on("orders")] == [b"1"]
    assert [m.data for m in publisher.on("payments")] == [b"2"]
    assert all(m.attributes == {} for m in publisher.on("orders") + publisher.on("payments"))
    assert manifest.getvalue().count("\n") == 2


PAID = (
    '{"payment_id": 70, "order_id": 7, "payment_method": "Card", "card_last_four": "0007", '
    '"payment_status": "Completed", "payment_datetime": "2026-01-01T00:00:00Z"}'
)


async def test_each_manifest_line_names_the_message_id_pubsub_returned() -> None:
    """The id goes before ``event`` (kept last, the body as published) or last, and lines
    keep the phase's order although the two topics are published at once."""
    publisher = FakePublisher()
    manifest = io.StringIO()
    topics = {EventType.ORDER: "orders", EventType.PAYMENT: "payments"}
    body = '{"order_id": 7, "price": 19.90}'
    phase = [
        Planned(EventType.PAYMENT, b"p", payment_record(PAID, orphan=False), "payments"),
        Planned(EventType.ORDER, body.encode(), order_record(body), "orders"),
        Planned(EventType.ORDER, b"", malformed_record("orders", "empty_body"), "malformed"),
    ]
    ids: dict[bytes, str] = {}
    real_publish = publisher.publish

    async def noting(topic: str, messages: Sequence[OutgoingMessage]) -> list[str]:
        got = await real_publish(topic, messages)
        ids.update(zip((m.data for m in messages), got, strict=True))
        return got

    publisher.publish = noting  # type: ignore[method-assign]
    await PhasePublisher(publisher, topics, manifest, Tally()).publish(phase)
    lines = manifest.getvalue().splitlines()
    assert [r["message_id"] for r in read_records(lines)] == [
        ids[b"p"],
        ids[body.encode()],
        ids[b""],
    ]
    assert lines[1] == (
        f'{{"kind": "order", "duplicate": false, "message_id": "{ids[body.encode()]}", '
        f'"event": {body}}}'
    )
    assert lines[2].endswith(f'"reason": "empty_body", "message_id": "{ids[b""]}"}}')
    state = expected_state(lines)  # the body still reads back exactly as published
    assert state.orders[7].body == body.encode()
    assert state.malformed_ids == {("orders", ids[b""]): "empty_body"}


class TimedPublisher(FakePublisher):
    """Notes, per request, when it arrived and when its reply left (monotonic seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[float, float, str]] = []

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> list[str]:
        arrived = time.monotonic()
        ids = await super().publish(topic, messages)
        self.requests.append((arrived, time.monotonic(), topic))
        return ids


async def test_a_phase_starts_two_publish_milliseconds_after_the_last_was_accepted() -> None:
    publisher = TimedPublisher()
    phases = PhasePublisher(publisher, {EventType.ORDER: "orders"}, io.StringIO(), Tally())
    await phases.publish([planned(EventType.ORDER, 1)])
    await phases.publish([])  # an empty phase publishes nothing and waits for nothing
    await phases.publish([planned(EventType.ORDER, 1)])  # the same order id, a later version
    first, second = publisher.requests
    assert second[0] - first[1] >= PHASE_GAP_SECONDS


async def test_a_phase_that_never_goes_through_is_not_recorded() -> None:
    publisher = FlakyPublisher()
    publisher.failures = 100
    manifest = io.StringIO()
    phases = PhasePublisher(publisher, {EventType.ORDER: "orders"}, manifest, Tally(), attempts=2)
    with pytest.raises(ExceptionGroup):
        await phases.publish([planned(EventType.ORDER, 1)])
    assert manifest.getvalue() == ""


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
