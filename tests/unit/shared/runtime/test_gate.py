"""The dependency gate: a dependency that fails closes it, pulling stops while it is closed, and
only its own probe opens it again, also while every puller waits on a long poll."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from ecom_shared.errors import CASSANDRA, StoreUnavailable
from ecom_shared.observability.health import Telemetry
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.runtime.backoff import Backoff
from ecom_shared.runtime.gate import DependencyGate
from tests.fakes import received
from tests.polling import eventually
from tests.unit.shared.observability.test_metrics import reported_up
from tests.unit.shared.runtime.test_consumer import FAST, FAST_PACING, Harness, ok_handler


async def test_store_outage_retries_later_and_pauses_pulling_until_probe_succeeds() -> None:
    down = True

    async def handler(message: ReceivedMessage) -> None:
        if down:
            raise StoreUnavailable("cassandra timed out")

    first = received(b"1")
    h = Harness(handler, [first], probe_failures=3)
    async with h.running():
        await eventually(lambda: h.sub.extended == [(first.ack_id, 7)])
        await eventually(lambda: h.probes >= 2)
        pulls_while_down = h.sub.pulls
        await eventually(lambda: h.probes >= 3)
        # Between failed probes nobody pulls, so an outage burns no delivery attempts.
        assert h.sub.pulls == pulls_while_down
        down = False
        second = received(b"2")
        h.sub.queue.append(second)
        await eventually(lambda: second.ack_id in h.sub.acked)
    assert first.ack_id not in h.sub.acked
    assert h.probes == 4  # three failed probes, then one that reopened the gate


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
