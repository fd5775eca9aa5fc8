"""Concurrent publishes to one topic share a request; each caller still learns its own fate."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ecom_shared.pubsub.batching import BatchingPublisher
from ecom_shared.pubsub.client import OutgoingMessage
from tests.fakes import FakePublisher


class CountingPublisher(FakePublisher):
    def __init__(self, *, failures: int = 0) -> None:
        super().__init__(failures=failures)
        self.requests: list[tuple[str, int]] = []

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> list[str]:
        self.requests.append((topic, len(messages)))
        return await super().publish(topic, messages)


def message(text: str) -> OutgoingMessage:
    return OutgoingMessage(text.encode())


async def test_concurrent_publishes_share_one_request_and_each_gets_its_ids() -> None:
    inner = CountingPublisher()
    batching = BatchingPublisher(inner, max_delay=0.01)
    results = await asyncio.gather(
        *(batching.publish("dlq", [message(f"m{i}"), message(f"n{i}")]) for i in range(50))
    )
    assert inner.requests == [("dlq", 100)]
    assert all(len(ids) == 2 for ids in results)
    assert len({i for ids in results for i in ids}) == 100
    assert [m.data for m in inner.on("dlq")] == [
        f"{p}{i}".encode() for i in range(50) for p in ("m", "n")
    ]


async def test_topics_are_never_mixed() -> None:
    inner = CountingPublisher()
    batching = BatchingPublisher(inner, max_delay=0.01)
    await asyncio.gather(
        batching.publish("a", [message("1")]), batching.publish("b", [message("2")])
    )
    assert sorted(inner.requests) == [("a", 1), ("b", 1)]


async def test_a_full_batch_leaves_at_once() -> None:
    inner = CountingPublisher()
    batching = BatchingPublisher(inner, max_delay=3600, max_messages=10)
    ids = await asyncio.wait_for(batching.publish("dlq", [message(str(i)) for i in range(10)]), 5)
    assert len(ids) == 10
    assert inner.requests == [("dlq", 10)]


async def test_a_failed_request_fails_every_caller_in_it() -> None:
    inner = CountingPublisher(failures=1)
    batching = BatchingPublisher(inner, max_delay=0.01)
    results = await asyncio.gather(
        *(batching.publish("dlq", [message(str(i))]) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await batching.publish("dlq", [message("again")])  # the next batch goes through


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    inner = CountingPublisher()
    batching = BatchingPublisher(inner, max_delay=0.05)
    leaving = asyncio.create_task(batching.publish("dlq", [message("gone")]))
    staying = asyncio.create_task(batching.publish("dlq", [message("kept")]))
    await asyncio.sleep(0)
    leaving.cancel()
    assert len(await staying) == 1
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert inner.requests == [("dlq", 2)]  # the message had been handed over: it is published
