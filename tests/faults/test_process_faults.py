"""Services killed and stopped under load (issue 5, scenarios 2 and 7).

Scenario 2 kills each consumer with SIGKILL at seeded random points of its own progress
(after a random number of messages received) while the producer publishes, restarts it, and
does so three times each; the DLQ worker is killed once too. Scenario 7 sends SIGTERM to every
service while they are busy: each must drain, settle every message it handled, and exit 0
within its budget (the drain grace, ``ECOM_CONSUMER__SHUTDOWN_GRACE_SECONDS``, plus 10 s to
close, which is Compose's ``stop_grace_period``); restarted, the consumers finish the stream and
each message is acked exactly once over both runs, so no ack was lost or dropped.
"""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path

import pytest

from ecom_shared.settings import ConsumerSettings
from tests.faults.harness import Scenario
from tests.faults.services import Service
from tests.infra import InfraUnderTest
from tests.polling import eventually

# Generous: each scenario waits on its own deadlines, and this machine's 2 cores are shared.
pytestmark = pytest.mark.timeout(600)

STOP_BUDGET = ConsumerSettings().shutdown_grace_seconds + 10  # compose.yaml: 30 s


async def until(service: Service, metric: str, at_least: float, timeout: float = 120) -> None:
    """Poll the service's metric until it reaches ``at_least``; fail at the deadline."""

    async def reached() -> bool:
        return (await service.metric(metric) or 0) >= at_least

    await eventually(reached, timeout, what=f"{service.name}: {metric} reaching {at_least}")


async def until_busy(consumer: Service, received: int, timeout: float = 120) -> None:
    """Poll until the consumer has received ``received`` messages and is writing some now."""

    async def busy() -> bool:
        got = await consumer.metric("ecom_messages_received_total") or 0
        return got >= received and (await consumer.metric("ecom_messages_in_flight") or 0) > 0

    await eventually(busy, timeout, what=f"{consumer.name} busy after {received} messages")


async def kill_at_random_point(s: Scenario, target: Service, rng: random.Random) -> None:
    """Wait until the running process has done a random amount of work (messages received;
    for the DLQ worker, passes), then SIGKILL it at the next moment it is shown to be mid-work
    (messages in flight; a pass running), and start it again."""
    await s.started(target)
    if target.kind == "dlq-worker":
        await until(target, "ecom_dlq_passes_total", rng.randint(1, 4))
    else:
        await until(target, "ecom_messages_received_total", rng.randint(1, 300))
    await s.kill_mid_work(target)
    assert target.exit_codes[-1] == -signal.SIGKILL
    s.restart(target)


async def test_consumers_killed_at_random_points_mid_stream(
    infra: InfraUnderTest, tmp_path: Path
) -> None:
    """The stream comes in three parts; during each, both consumers are killed once at their
    own random point with messages in hand (each new part feeds the restarted processes, so
    every point is reached), and the DLQ worker once during the second, in a pass."""
    rng = random.Random(202)
    async with Scenario(infra, "2 SIGKILL consumers mid-stream", tmp_path) as s:
        [orders] = s.start("order-consumer")
        [payments] = s.start("payment-consumer")
        [worker] = s.start("dlq-worker")
        await s.started()
        for part in range(3):
            producer = s.start_producer(
                450, seed=202 + part, rate=400, id_base=1_000_000 * (part + 1), payments_first=0.4
            )
            kills = [
                kill_at_random_point(s, c, random.Random(rng.random())) for c in (orders, payments)
            ]
            if part == 1:
                kills.append(kill_at_random_point(s, worker, random.Random(rng.random())))
            await asyncio.gather(*kills)
            assert await s.wait_producer(producer) == 0
        report = await s.finish()
    # A consumer killed between a dead-letter publish (or an announcement) and its ack
    # publishes that message again when it is redelivered (at-least-once): such copies are
    # reported, and report.ok holds only if a kill explains each one.
    assert report.ok, report
    assert report.unexplained_copies == report.unannounced == 0, report
    assert report.announced > 0, report  # payments were parked, and announced
    assert report.faults == 7
    # Every kill landed mid-work: the consumers with messages in flight, the worker in a pass.
    kinds = sorted(str(kill["service"]) for kill in report.kills)
    assert kinds == ["dlq-worker-1"] + ["order-consumer-1"] * 3 + ["payment-consumer-1"] * 3
    for kill in report.kills:
        evidence = kill.get("in_flight", kill.get("pass_running"))
        assert isinstance(evidence, int), kill
        assert evidence > 0, kill
    assert orders.exit_codes == payments.exit_codes == [-signal.SIGKILL] * 3 + [0]
    assert worker.exit_codes == [-signal.SIGKILL, 0]


def assert_drained(consumer: Service) -> None:
    """The first run settled every message it handled, within its drain grace."""
    [stopped] = consumer.events("consumer.stopped", all_runs=False)
    assert stopped["received"] > 0, consumer.name
    assert stopped["acked"] + stopped["retried"] == stopped["received"], stopped
    assert not consumer.events("consumer.drain_timeout"), consumer.name
    assert not consumer.events("ack.failed"), consumer.name


async def test_sigterm_during_load_drains_and_exits_in_time(
    infra: InfraUnderTest, tmp_path: Path
) -> None:
    async with Scenario(infra, "7 SIGTERM during load", tmp_path) as s:
        [orders] = s.start("order-consumer")
        [payments] = s.start("payment-consumer")
        [worker] = s.start("dlq-worker")
        await s.started()
        producer = s.start_producer(2000, seed=707, payments_first=0.5)  # as fast as it can
        for consumer in (orders, payments):
            await until_busy(consumer, received=400)
        codes = await asyncio.gather(
            *(s.terminate(service, STOP_BUDGET) for service in (orders, payments, worker))
        )
        assert codes == [0, 0, 0]  # none hung past its budget, none crashed
        for consumer in (orders, payments):
            assert_drained(consumer)
        assert await s.wait_producer(producer) == 0
        for service in (orders, payments, worker):
            s.restart(service)
        report = await s.finish()
    assert report.ok, report
    assert report.dead_letter_copies == report.announcement_copies == 0, report
    # No ack lost or dropped: over both runs, each message was acked exactly once.
    for kind, published in s.published_per_consumer().items():
        [service] = s.of(kind)
        acked = sum(line["acked"] for line in service.events("consumer.stopped"))
        assert acked == published, (kind, acked, published)
