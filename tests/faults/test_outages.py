"""Outages of the servers under the running pipeline (issue 5, scenarios 4 and 5).

4. Cassandra paused with SIGSTOP for longer than the request timeout, then resumed; and
   Cassandra killed with SIGKILL, then restarted on its data directory and ports. While it is
   away the consumers stop pulling (their dependency gate) instead of burning delivery
   attempts: the subscriptions' dead-letter policy is set to 5 attempts, and no healthy
   message may reach the dead-letter topic.
5. The emulator killed and restarted under running consumers, which reconnect by themselves;
   the test provisions the topics and subscriptions again and publishes again what the
   manifest says the tables still lack. Its dead letters and announcements are taken before the
   kill, and what is published again must be no more than what no consumer had acked when the
   emulator died: a message acked without its write would show as more.

The session's Cassandra node and emulator are shared with every later test: the ``outage``
fixture resumes or restarts them and waits until they answer, whatever happened here.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ecom_shared.pubsub.provision import provision
from tests.faults.harness import Scenario
from tests.faults.outages import (
    MAX_MESSAGES,
    PULLERS,
    Away,
    Servers,
    cassandra_up_for_all,
    hold_outage,
    metric,
    outage_env,
    outage_settings,
    until,
)
from tests.faults.pubsub import dead_letter_key, expected_dead_letters, source_id
from tests.faults.report import FaultReport
from tests.faults.republish import republish_lost
from tests.faults.services import Service
from tests.infra import InfraUnderTest

ACKED_BEFORE_KILL = 0.7  # of each subscription's messages, when the emulator is killed
HELD_MESSAGES = 3000  # published while Cassandra stays away: about 15 s at 200 messages/s


@pytest.fixture(scope="session")
def servers(infra: InfraUnderTest) -> Iterator[Servers]:
    """The session's servers; those restarted here are stopped at the session's end."""
    mended = Servers(infra)
    yield mended
    mended.stop_restarted()


@pytest.fixture
async def outage(servers: Servers) -> AsyncIterator[Servers]:
    """Break the servers at will: they are resumed or restarted after the test, always."""
    try:
        yield servers
    finally:
        await servers.heal()


def assert_kept_still(away: Away) -> None:
    """While Cassandra was away, each consumer pulled at most the batches its pullers had
    already asked for, though the producer published plenty meanwhile."""
    assert away.published >= HELD_MESSAGES, away
    for name, pulled in away.pulled.items():
        assert 0 <= pulled <= PULLERS * MAX_MESSAGES, (name, away)
        assert away.retried[name] <= PULLERS * MAX_MESSAGES, (name, away)


def assert_clean(report: FaultReport, away: Away, outages: dict[str, float]) -> None:
    print(f"outage: {outages}; while away: {away}")
    assert report.ok, report
    # Nothing died but the server: no message may have been dead-lettered or announced twice.
    assert report.dead_letter_copies == report.announcement_copies == 0, report
    assert report.announced > 0, report  # payments were parked, and announced
    assert sum(report.dead_letter_expected.values()) > 0  # bad input was part of the stream
    assert all(codes == [0] for codes in report.exit_codes.values()), report.exit_codes


async def started_pipeline(s: Scenario) -> tuple[list[Service], Service]:
    consumers = s.start("order-consumer") + s.start("payment-consumer")
    s.start("dlq-worker")
    await s.started()
    producer = s.start_producer(2400, seed=404, rate=200, payments_first=0.3, malformed=0.02)

    async def flowing() -> bool:
        return await metric(consumers[0], "ecom_messages_acked_total") >= 200

    await until(flowing, "the order consumer acked its first 200 messages")
    return consumers, producer


@pytest.mark.timeout(600)
async def test_cassandra_paused_longer_than_the_request_timeout(
    infra: InfraUnderTest, tmp_path: Path, outage: Servers
) -> None:
    # A 2 s request timeout: paused 15 s or more, Cassandra is away for many timeouts.
    s = Scenario(infra, "4a Cassandra paused (SIGSTOP)", tmp_path, env=outage_env(2.0))
    outage_settings(s)
    async with s:
        consumers, producer = await started_pipeline(s)
        frozen = outage.pause_cassandra()
        s.fault("Cassandra SIGSTOP")
        away = await hold_outage(consumers, producer, HELD_MESSAGES)
        await outage.resume_cassandra(frozen)
        await until(lambda: cassandra_up_for_all(consumers), "every consumer's gate reopened")
        assert await s.wait_producer(producer) == 0
        report = await s.finish()
    assert_kept_still(away)
    assert_clean(report, away, outage.outages)


@pytest.mark.timeout(900)  # Cassandra's restart took 1 to 2 min here while the machine was busy
async def test_cassandra_killed_and_restarted(
    infra: InfraUnderTest, tmp_path: Path, outage: Servers
) -> None:
    # The default request timeout: a node just restarted on a busy machine is slow for a while.
    s = Scenario(infra, "4b Cassandra killed, restarted", tmp_path, env=outage_env(5.0))
    outage_settings(s)
    await outage.make_commitlog_durable()  # else the kill loses what the node acked last
    async with s:
        durable = asyncio.create_task(outage.make_schema_durable())  # while the services start
        consumers, producer = await started_pipeline(s)
        await durable
        died = await outage.kill_cassandra()
        s.fault("Cassandra SIGKILL")
        away = await hold_outage(consumers, producer, HELD_MESSAGES)
        await outage.restart_cassandra(died)
        await until(lambda: cassandra_up_for_all(consumers), "every consumer's gate reopened")
        assert await s.wait_producer(producer) == 0
        report = await s.finish()
    assert_kept_still(away)
    assert_clean(report, away, outage.outages)


@pytest.mark.timeout(600)
async def test_emulator_restarted_under_running_consumers(
    infra: InfraUnderTest, tmp_path: Path, outage: Servers
) -> None:
    # The whole stream waits before the consumers start, and they take one small batch at a
    # time: the emulator goes once each has acked most of its subscription's messages, with
    # the rest still to come. Few messages are then never acked, and the bound below is tight.
    slow = {"ECOM_CONSUMER__PULLERS": "1", "ECOM_CONSUMER__MAX_MESSAGES": "20"}
    async with Scenario(infra, "5 emulator restarted", tmp_path, env=slow) as s:
        code = await s.produce(3000, seed=505, payments_first=0.3, malformed=0.02)
        assert code == 0
        consumers = s.start("order-consumer") + s.start("payment-consumer")
        s.start("dlq-worker")
        await s.started()
        published = s.published_per_consumer()

        async def mostly_acked() -> bool:
            acked = await acked_per_consumer(consumers)
            return all(acked[kind] >= ACKED_BEFORE_KILL * n for kind, n in published.items())

        await until(mostly_acked, f"each consumer acked {ACKED_BEFORE_KILL:.0%} of its messages")
        # What reached dead-letter and dlq-payments goes with the emulator, so it is taken first,
        # with the consumers frozen: nothing they dead-letter or announce (and then ack) can
        # fall between that take and the kill. Let go once the emulator is gone, they can ack
        # nothing more, so their counters then are final for it.
        for consumer in consumers:
            consumer.signal(signal.SIGSTOP)
        await asyncio.sleep(1)  # publishes sent just before the freeze reach the emulator
        await s.take_dead_letters(timeout=0)
        await s.take_announcements()
        down = await outage.kill_emulator()
        s.fault("emulator SIGKILL and restart")
        for consumer in consumers:
            consumer.signal(signal.SIGCONT)
        acked = await acked_per_consumer(consumers)
        never_acked = {kind: n - acked[kind] for kind, n in published.items()}
        await outage.restart_emulator(down)
        s.emulator_restarted()
        await provision(s.settings, schema=False)
        # Each consumer sees the new emulator back before anything is published to it again.
        await until(
            lambda: all(c.events("pull.recovered") for c in consumers),
            "every consumer pulling from the new emulator",
        )
        # Nothing pulled from the old emulator is still in hand.
        await until(lambda: nothing_in_hand(consumers), "no consumer holds a message")
        await s.take_dead_letters(timeout=0)
        seen = {source_id(m): m for m in s.dead_letters}
        got = Counter(dead_letter_key(m, s.settings.pubsub) for m in seen.values())
        missing = expected_dead_letters(s.manifest.read_text().splitlines()) - got
        again = await republish_lost(s.settings, s.expected(), missing)
        s.republished = again.total
        # Announcements published to the old emulator after the drain are gone with it.
        report = await s.finish(announced_all=False)
    print(f"published again: {again}; never acked: {never_acked}; outage: {outage.outages}")
    assert again.total > 0  # the restart did lose messages
    # Only what no consumer acked may have been lost: a consumer that acked a message without
    # its write would need more published again than that.
    assert again.on_topic["orders"] <= never_acked["order-consumer"], (again, never_acked)
    assert again.on_topic["payments"] <= never_acked["payment-consumer"], (again, never_acked)
    assert report.ok, report
    assert report.dead_letter_copies == report.announcement_copies == 0, report
    for consumer in consumers:
        assert len(consumer.runs) == 1, consumer.name  # never restarted: it reconnected
        assert consumer.events("pull.failed"), consumer.name
    assert all(codes == [0] for codes in report.exit_codes.values()), report.exit_codes


async def acked_per_consumer(consumers: list[Service]) -> Counter[str]:
    """Acks counted so far, by kind of consumer (every consumer must serve its metrics)."""
    acked: Counter[str] = Counter()
    for consumer in consumers:
        value = await consumer.metric("ecom_messages_acked_total")
        assert value is not None, f"{consumer.name} serves no metrics"
        acked[consumer.kind] += int(value)
    return acked


async def nothing_in_hand(consumers: list[Service]) -> bool:
    for consumer in consumers:
        if await metric(consumer, "ecom_messages_in_flight") != 0:
            return False
    return True
