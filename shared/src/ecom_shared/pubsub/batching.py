"""A publisher that merges concurrent publishes to one topic into one request.

The payment consumer announces every parked payment on ``dlq-payments``, and hundreds of its
handlers run at once: one request per announcement would make Pub/Sub, not Cassandra, the
bound of the parked path, so the announcements of a moment share a request. Each caller still
returns only when Pub/Sub has accepted *its* messages, or raises what the shared request
raised, so "ack only after the publish succeeded" holds for every message.
"""

from __future__ import annotations

from collections.abc import Sequence

from ecom_shared.pubsub.client import MAX_MESSAGES_PER_PUBLISH, OutgoingMessage, Publisher
from ecom_shared.runtime.microbatch import MicroBatcher


class BatchingPublisher:
    """Collects publishes for up to ``max_delay`` seconds (or ``max_messages`` messages), then
    sends them in one call of ``inner`` (which splits what exceeds one request's limits)."""

    def __init__(
        self,
        inner: Publisher,
        *,
        max_delay: float = 0.005,
        max_messages: int = MAX_MESSAGES_PER_PUBLISH,
    ) -> None:
        self._inner = inner
        self._publishes: MicroBatcher[str, Sequence[OutgoingMessage], list[str]] = MicroBatcher(
            self._send, max_delay=max_delay, max_size=max_messages, size=len
        )

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> list[str]:
        return await self._publishes.submit(topic, messages)

    async def _send(self, topic: str, groups: list[Sequence[OutgoingMessage]]) -> list[list[str]]:
        """One request for every caller's messages; each caller's ids, in its order."""
        ids = await self._inner.publish(topic, [message for group in groups for message in group])
        results, start = [], 0
        for group in groups:
            results.append(ids[start : start + len(group)])
            start += len(group)
        return results
