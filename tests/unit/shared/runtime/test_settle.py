"""Settling what a pull loop holds: leases renewed for the subscription's own deadline while
handlers run, each message acked soon after it is done, a fast batch in one request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ecom_shared.pubsub.client import ReceivedMessage
from tests.fakes import received
from tests.polling import eventually
from tests.unit.shared.runtime.test_consumer import Harness, ok_handler, one_puller_harness


async def test_leases_are_extended_while_handlers_run() -> None:
    release = asyncio.Event()

    async def slow(message: ReceivedMessage) -> None:
        await release.wait()

    message = received(b"1")
    h = Harness(slow, [message])
    h.sub.ack_deadline_seconds = 0.02  # type: ignore[assignment]  # extend every 10 ms
    async with h.running():
        await eventually(lambda: len(h.sub.extended) >= 2)
        release.set()
        await eventually(lambda: h.sub.acked == [message.ack_id])
    assert all(ack_id == message.ack_id for ack_id, _ in h.sub.extended)


async def test_a_finished_message_is_settled_before_its_lease_ends_while_its_batch_runs() -> None:
    """One message of a batch is done at once, the other takes 1.5 ack
    deadlines; the first must be acked (or its lease extended) before its deadline passes."""
    instant, slow = received(b"instant"), received(b"slow")

    async def handler(message: ReceivedMessage) -> None:
        if message is slow:
            await asyncio.sleep(1.5)

    h = one_puller_harness(handler, [instant, slow], deadline=1, setting=1)
    async with h.running():
        await eventually(lambda: slow.ack_id in h.sub.acked)
    assert h.sub.lapsed == []
    assert h.sub.acked[0] == instant.ack_id  # acked while the slow one still ran
    assert h.consumer.stats.acked == 2


async def test_the_lease_follows_the_subscriptions_own_deadline() -> None:
    """The setting says 60 s, the subscription 1 s: leases are renewed for the real one."""
    slow = received(b"slow")

    async def handler(message: ReceivedMessage) -> None:
        await asyncio.sleep(1.5)

    h = one_puller_harness(handler, [slow], deadline=1, setting=60)
    async with h.running():
        await eventually(lambda: h.sub.acked == [slow.ack_id])
    assert h.sub.lapsed == []
    assert (slow.ack_id, 1) in h.sub.extended
    assert h.consumer.ack_deadline_seconds == 1


async def test_a_fast_batch_is_acked_in_one_request() -> None:
    """Prompt acks must not cost the fast path requests: a batch done within the flush
    interval still goes out as one ack."""
    messages = [received(str(i).encode()) for i in range(10)]
    h = one_puller_harness(ok_handler, messages, deadline=60, setting=60)
    requests: list[int] = []
    real_ack = h.sub.ack

    async def counting_ack(ack_ids: Sequence[str]) -> None:
        requests.append(len(ack_ids))
        await real_ack(ack_ids)

    h.sub.ack = counting_ack  # type: ignore[method-assign]
    async with h.running():
        await eventually(lambda: len(h.sub.acked) == 10)
    assert requests == [10]
