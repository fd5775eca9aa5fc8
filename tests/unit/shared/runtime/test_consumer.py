"""The consumer loop's ack, dead-letter, retry, restart and stop behaviour, and what it counts,
on fakes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest
import structlog

from ecom_shared.errors import InvalidMessage, StoreUnavailable
from ecom_shared.observability.health import Telemetry
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.pubsub.deadletter import DeadLetters
from ecom_shared.runtime.consumer import UNREADY_AFTER_PULL_FAILURES, Consumer, Handler, Pacing
from ecom_shared.settings import ConsumerSettings
from tests.fakes import FakePublisher, FakeSubscription, received
from tests.polling import eventually
from tests.unit.shared.observability.test_metrics import reported_up, value

FAST = ConsumerSettings(pullers=2, max_messages=10, retry_delay_seconds=7, shutdown_grace_seconds=2)
SUB = {"subscription": "fake-sub"}  # the labels of the fake subscription's metrics
FAST_PACING = Pacing(backoff_initial_seconds=0.01, backoff_max_seconds=0.02)


class Harness:
    def __init__(
        self,
        handler: Handler,
        messages: list[ReceivedMessage],
        *,
        settings: ConsumerSettings = FAST,
        pacing: Pacing = FAST_PACING,
        probe_failures: int = 0,
        ack_deadline: int = 60,
        ack_deadline_setting: int = 60,
    ) -> None:
        self.sub = FakeSubscription(messages, ack_deadline=ack_deadline)
        self.publisher = FakePublisher()
        self.probes = 0
        self.probe_failures = probe_failures
        self.telemetry = Telemetry.create()
        self.consumer = Consumer(
            self.sub,
            handler,
            DeadLetters(self.publisher, "dead-letter"),
            settings,
            ack_deadline_seconds=ack_deadline_setting,
            probe=self.probe,
            telemetry=self.telemetry,
            pacing=pacing,
        )
        self.stop = asyncio.Event()

    async def probe(self) -> None:
        self.probes += 1
        if self.probes <= self.probe_failures:
            raise StoreUnavailable("still down")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[asyncio.Task[None]]:
        task = asyncio.create_task(self.consumer.run(self.stop))
        try:
            yield task
        finally:
            self.stop.set()
            await asyncio.wait_for(task, 5)


async def ok_handler(message: ReceivedMessage) -> None:
    return None


async def test_successful_messages_are_acked_once() -> None:
    messages = [received(b"{}") for _ in range(25)]
    h = Harness(ok_handler, messages)
    async with h.running():
        await eventually(lambda: len(h.sub.acked) == 25)
    assert sorted(h.sub.acked) == sorted(m.ack_id for m in messages)
    assert h.consumer.stats.acked == 25


async def test_invalid_message_is_dead_lettered_byte_for_byte_then_acked() -> None:
    async def refuse(message: ReceivedMessage) -> None:
        raise InvalidMessage("invalid_json", "body: not JSON")

    bad = received(b"\xff not json", {"event_type": "order"})
    h = Harness(refuse, [bad])
    async with h.running():
        await eventually(lambda: h.sub.acked == [bad.ack_id])
    [sent] = h.publisher.on("dead-letter")
    assert sent.data == b"\xff not json"
    assert sent.attributes["error_reason"] == "invalid_json"
    assert sent.attributes["source_subscription"] == "fake-sub"
    assert sent.attributes["source_message_id"] == bad.message_id
    assert '"event_type": "order"' in sent.attributes["original_attributes"]


async def test_dead_letter_publish_failure_means_retry_not_ack() -> None:
    async def refuse(message: ReceivedMessage) -> None:
        raise InvalidMessage("invalid_json", "x")

    bad = received(b"x")
    h = Harness(refuse, [bad])
    h.publisher.failures = 1
    async with h.running():
        await eventually(lambda: h.sub.extended)
    assert h.sub.acked == []
    assert h.sub.extended == [(bad.ack_id, 7)]


async def test_unexpected_error_is_retried_not_acked_and_loop_survives() -> None:
    async def buggy(message: ReceivedMessage) -> None:
        if message.data == b"boom":
            raise RuntimeError("bug")

    boom, fine = received(b"boom"), received(b"fine")
    h = Harness(buggy, [boom, fine])
    async with h.running():
        await eventually(lambda: fine.ack_id in h.sub.acked and h.sub.extended)
    assert boom.ack_id not in h.sub.acked
    assert h.consumer.stats.reasons == {"unexpected:RuntimeError": 1}


async def test_failed_pulls_are_retried_with_backoff() -> None:
    message = received(b"1")
    h = Harness(ok_handler, [message])
    h.sub.fail_pulls = 5
    async with h.running():
        await eventually(lambda: h.sub.acked == [message.ack_id])
    assert h.consumer.stats.pull_errors == 5


def abandoned_pulls(sub: FakeSubscription) -> list[int]:
    """Make ``sub``'s empty pulls long polls that only a cancel ends; count those cancels."""
    cancels = [0]
    serve = sub.pull

    async def long_poll(max_messages: int, timeout: float) -> list[ReceivedMessage]:
        if sub.queue:
            return await serve(max_messages, timeout)
        sub.pulls += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancels[0] += 1
            raise
        return []

    sub.pull = long_poll  # type: ignore[method-assign]
    return cancels


async def test_stop_drains_the_batch_in_hand() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    cancelled: list[str] = []

    async def slow(message: ReceivedMessage) -> None:
        started.set()
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled.append(message.ack_id)
            raise

    message = received(b"1")
    h = Harness(slow, [message])
    idle_pulls_ended = abandoned_pulls(h.sub)
    task = asyncio.create_task(h.consumer.run(h.stop))
    await started.wait()
    await eventually(lambda: h.sub.pulls >= 2)  # the other puller waits on a long poll
    h.stop.set()
    await eventually(lambda: idle_pulls_ended[0] == 1)  # the other puller has seen the stop
    assert cancelled == []  # the handler in hand is left to finish
    assert not task.done()  # and run() waits for it
    release.set()
    await asyncio.wait_for(task, 2)
    assert h.sub.acked == [message.ack_id]


async def test_stop_gives_up_after_the_grace_period() -> None:
    async def stuck(message: ReceivedMessage) -> None:
        await asyncio.Event().wait()

    settings = FAST.model_copy(update={"shutdown_grace_seconds": 0.1})
    message = received(b"1")
    h = Harness(stuck, [message], settings=settings)
    task = asyncio.create_task(h.consumer.run(h.stop))
    await eventually(lambda: h.consumer.stats.received == 1)
    h.stop.set()
    await asyncio.wait_for(task, 2)  # returns instead of hanging
    assert h.sub.acked == []  # never acked: it will be redelivered


async def test_a_crash_in_the_loop_surfaces() -> None:
    h = Harness(ok_handler, [received(b"1")])

    async def broken_ack(ack_ids: object) -> None:
        raise RuntimeError("loop bug")

    h.sub.ack = broken_ack  # type: ignore[method-assign]
    with pytest.raises(ExceptionGroup):
        await asyncio.wait_for(h.consumer.run(h.stop), 5)


async def test_a_pull_reply_that_cannot_be_parsed_is_retried_not_fatal() -> None:
    message = received(b"1")
    h = Harness(ok_handler, [message])
    original_pull = h.sub.pull
    broken = [True]

    async def pull_once_broken(max_messages: int, timeout: float) -> list[ReceivedMessage]:
        if broken:
            broken.clear()
            raise ValueError("time data '2026-01-01T00:00:00.123456789Z' does not match format")
        return await original_pull(max_messages, timeout)

    h.sub.pull = pull_once_broken  # type: ignore[method-assign]
    async with h.running():
        await eventually(lambda: h.sub.acked == [message.ack_id])
    assert h.consumer.stats.pull_errors == 1


async def test_no_more_than_max_in_flight_messages_are_handled_at_once() -> None:
    running = 0
    peak = 0

    async def counting(message: ReceivedMessage) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1

    messages = [received(str(i).encode()) for i in range(40)]
    settings = FAST.model_copy(update={"max_in_flight": 3, "min_in_flight": 1})
    h = Harness(counting, messages, settings=settings)
    async with h.running():
        await eventually(lambda: len(h.sub.acked) == 40)
    assert peak == 3


async def test_the_next_pull_goes_out_while_the_ack_is_on_the_wire_and_stop_waits_for_it() -> None:
    one_puller = FAST.model_copy(update={"pullers": 1, "max_messages": 1})
    first, second = received(b"1"), received(b"2")
    h = Harness(ok_handler, [first, second], settings=one_puller)
    release = asyncio.Event()
    real_ack = h.sub.ack
    abandoned_acks: list[Sequence[str]] = []

    async def slow_ack(ack_ids: Sequence[str]) -> None:
        try:
            await release.wait()
        except asyncio.CancelledError:
            abandoned_acks.append(ack_ids)
            raise
        await real_ack(ack_ids)

    h.sub.ack = slow_ack  # type: ignore[method-assign]
    pulls_ended = abandoned_pulls(h.sub)
    task = asyncio.create_task(h.consumer.run(h.stop))
    await eventually(lambda: h.sub.pulls >= 3)  # pulled again with both acks unsent
    assert h.sub.acked == []
    h.stop.set()
    await eventually(lambda: pulls_ended[0] == 1)  # the puller has seen the stop
    assert abandoned_acks == []  # the acks still on the wire are not given up
    assert not task.done()  # and run() waits for them
    release.set()
    await asyncio.wait_for(task, 5)
    assert h.sub.acked == [first.ack_id, second.ack_id]


async def test_after_cassandra_fails_to_answer_writes_start_over_a_few_at_a_time() -> None:
    failing, started_after_failure = 10, list[int]()
    running = failed = succeeded = 0

    async def handler(message: ReceivedMessage) -> None:
        nonlocal running, failed, succeeded
        running += 1
        if failed and not succeeded:
            started_after_failure.append(running)
        try:
            await asyncio.sleep(0.005)
            if int(message.data or b"0") < failing:
                failed += 1
                raise StoreUnavailable("timed out", driver_error="CassErrorLibRequestTimedOut")
            succeeded += 1
        finally:
            running -= 1

    messages = [received(str(i).encode()) for i in range(40)]
    settings = FAST.model_copy(
        update={"pullers": 1, "max_messages": 40, "max_in_flight": 10, "min_in_flight": 2}
    )
    h = Harness(handler, messages, settings=settings)
    async with h.running():
        await eventually(lambda: len(h.sub.acked) == 30)
    # The first ten went out together and timed out; until a write succeeded, at most two ran.
    assert started_after_failure
    assert max(started_after_failure) <= 2
    assert len(h.sub.extended) == failing  # each left for redelivery, none acked
    # Thirty writes later the limit is back at its maximum.
    labels = {"subscription": "fake-sub"}
    assert h.telemetry.registry.get_sample_value("ecom_in_flight_limit", labels) == 10


def one_puller_harness(
    handler: Handler, messages: list[ReceivedMessage], *, deadline: int, setting: int
) -> Harness:
    """One loop whose subscription has ``deadline`` while the setting says ``setting``."""
    one = FAST.model_copy(update={"pullers": 1})
    return Harness(
        handler, messages, settings=one, ack_deadline=deadline, ack_deadline_setting=setting
    )


async def test_an_unreadable_deadline_falls_back_to_the_setting_with_a_warning() -> None:
    h = one_puller_harness(ok_handler, [received(b"1")], deadline=1, setting=60)
    h.sub.config_error = ConnectionError("403 Forbidden")
    with structlog.testing.capture_logs() as logs:
        async with h.running():
            await eventually(lambda: len(h.sub.acked) == 1)
    assert h.consumer.ack_deadline_seconds == 60
    [warning] = [line for line in logs if line["event"] == "subscription.deadline_unknown"]
    assert warning["log_level"] == "warning"
    assert warning["fallback_seconds"] == 60


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


async def test_recovery_is_seen_on_an_idle_subscription() -> None:
    # Long polls on an empty subscription never answer here, as Pub/Sub's wait for the next
    # message: only the pull answered at once, which follows a failure, can show Pub/Sub back.
    h = Harness(ok_handler, [])
    h.sub.fail_pulls = UNREADY_AFTER_PULL_FAILURES + 2

    async def long_poll(max_messages: int, timeout: float) -> list[ReceivedMessage]:
        h.sub.pulls += 1
        if h.sub.fail_pulls:
            h.sub.fail_pulls -= 1
            raise h.sub.error
        await asyncio.Event().wait()
        return []

    h.sub.pull = long_poll  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logs:
        async with h.running():
            await eventually(lambda: h.sub.fail_pulls == 0)
            await eventually(lambda: reported_up(h.telemetry.health, "pubsub"))
            assert any(e["event"] == "pull.recovered" for e in logs)
    assert h.sub.pulls_now >= 1
    assert h.consumer.stats.pull_errors == UNREADY_AFTER_PULL_FAILURES + 2
