"""A publisher that merges concurrent publishes to one topic into one request.

The payment consumer announces every parked payment on ``dlq-payments``. Published one by
one, those announcements cost a request each: measured by ``ecom-bench``, the parked path
ran at 30 % of the payment ceiling, with the emulator busy on a full core. Hundreds of
handlers run at once, so their announcements can share a request. Each caller still returns
only when Pub/Sub has accepted *its* messages, or raises what the shared request raised, so
"ack only after the publish succeeded" holds exactly as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from ecom_shared.pubsub import MAX_MESSAGES_PER_PUBLISH, OutgoingMessage, Publisher


@dataclass(slots=True)
class _Waiting:
    """Messages of several callers for one topic, each with the future its caller awaits."""

    callers: list[tuple[Sequence[OutgoingMessage], asyncio.Future[list[str]]]] = field(
        default_factory=list
    )
    count: int = 0
    timer: asyncio.TimerHandle | None = None


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
        self._max_delay = max_delay
        self._max_messages = max_messages
        self._waiting: dict[str, _Waiting] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> list[str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[str]] = loop.create_future()
        waiting = self._waiting.setdefault(topic, _Waiting())
        waiting.callers.append((messages, future))
        waiting.count += len(messages)
        if waiting.count >= self._max_messages:
            self._flush(topic)
        elif waiting.timer is None:
            waiting.timer = loop.call_later(self._max_delay, self._flush, topic)
        return await future

    def _flush(self, topic: str) -> None:
        waiting = self._waiting.pop(topic, None)
        if waiting is None:
            return
        if waiting.timer is not None:
            waiting.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._send(topic, waiting))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, topic: str, waiting: _Waiting) -> None:
        messages = [message for group, _ in waiting.callers for message in group]
        try:
            ids = await self._inner.publish(topic, messages)
        except Exception as exc:  # noqa: BLE001 - every caller gets the failure to judge
            for _, future in waiting.callers:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for group, future in waiting.callers:
            if not future.done():  # a caller cancelled meanwhile no longer waits
                future.set_result(ids[start : start + len(group)])
            start += len(group)
