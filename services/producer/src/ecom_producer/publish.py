"""Publishing planned chunks at a steady rate, recording each accepted message in the manifest.

A phase is published only after the one before it was accepted, and a little later: Pub/Sub
sets a message's ``publishTime`` when its server receives the message, to the millisecond, and
the order consumer writes an order version with that time (the apps send no ``updated_at``). A
phase that starts at least :data:`PHASE_GAP_SECONDS` after the previous one was accepted gets
later publish times than every message of it, so the version published in the later phase
is the one the table keeps, as the manifest's line order says.

Each manifest line carries the id Pub/Sub returned for its message (``"message_id"``), so the
verifier can find a dead-lettered message by the id the consumer names it with.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TextIO

from ecom_producer.planned import Planned
from ecom_shared.error_text import describe_error
from ecom_shared.errors import PUBSUB, PublishFailed
from ecom_shared.events import EventType
from ecom_shared.observability.health import HealthState
from ecom_shared.observability.logs import get_logger
from ecom_shared.observability.metrics import ProducerMetrics
from ecom_shared.pubsub.client import OutgoingMessage, Publisher
from ecom_shared.runtime.backoff import Backoff
from ecom_verifier.manifest import append_records, with_message_id

log = get_logger(__name__)

PHASE_GAP_SECONDS: Final = 0.002  # two publishTime milliseconds between phases


class RateLimiter:
    """Spaces publishes so the average stays at ``rate`` messages per second (0: no limit)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._start = clock()
        self._sent = 0

    async def admit(self, messages: int) -> None:
        """Wait until the messages sent so far are due, then count ``messages`` as sent."""
        if self._rate > 0:
            delay = self._start + self._sent / self._rate - self._clock()
            if delay > 0:
                await self._sleep(delay)
        self._sent += messages


@dataclass(slots=True)
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_fields(self) -> dict[str, object]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {
            "published": self.total,
            **dict(self.counts),
            "rate_per_s": round(self.total / elapsed, 1),
            "seconds": round(elapsed, 1),
        }


class PhasePublisher:
    """Publishes one phase of a chunk to the two topics, retrying failed publishes."""

    def __init__(
        self,
        publisher: Publisher,
        topics: dict[EventType, str],
        manifest: TextIO | None,
        tally: Tally,
        *,
        attempts: int = 8,
        metrics: ProducerMetrics | None = None,
        health: HealthState | None = None,
        gap: float = PHASE_GAP_SECONDS,
    ) -> None:
        self._publisher = publisher
        self._topics = topics
        self._manifest = manifest
        self._tally = tally
        self._attempts = attempts
        self._metrics = metrics
        self._health = health
        self._gap = gap
        self._accepted_at: float | None = None  # when the last phase was accepted (monotonic)
        if health is not None:
            health.track(PUBSUB)

    async def publish(self, phase: list[Planned]) -> None:
        """Publish one phase (no two messages of one order id in it) once the gap since the
        previous phase has passed; record it in the manifest once it was accepted."""
        if not phase:
            return
        # publishTime is set by the server when a request arrives, to the millisecond: a phase
        # sent 2 ms after the last one's reply has later times than all of the last one's.
        if self._accepted_at is not None:
            wait = self._accepted_at + self._gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        ids = await self._publish_phase(phase)
        self._accepted_at = time.monotonic()
        if self._manifest is not None:
            records = (with_message_id(p.record, i) for p, i in zip(phase, ids, strict=True))
            append_records(self._manifest, records)
        kinds = Counter(message.label for message in phase)
        self._tally.counts.update(kinds)
        if self._metrics is not None:
            for label, count in kinds.items():
                self._metrics.published.labels(label).inc(count)

    async def _publish_phase(self, phase: list[Planned]) -> list[str]:
        """Publish to both topics at once; the message ids, in the phase's order."""
        places = {
            kind: [i for i, p in enumerate(phase) if p.topic_kind is kind] for kind in self._topics
        }
        async with asyncio.TaskGroup() as group:
            tasks = [
                (at, group.create_task(self._publish_topic(self._topics[kind], phase, at)))
                for kind, at in places.items()
                if at
            ]
        ids = [""] * len(phase)
        for at, task in tasks:
            for i, message_id in zip(at, task.result(), strict=True):
                ids[i] = message_id
        return ids

    async def _publish_topic(self, topic: str, phase: list[Planned], at: list[int]) -> list[str]:
        """Publish the messages of ``phase`` at ``at``, retrying; the ids Pub/Sub gave them."""
        messages = [OutgoingMessage(phase[i].data, phase[i].attributes) for i in at]
        backoff = Backoff(0.5, 10.0)
        for attempt in range(1, self._attempts + 1):
            try:
                ids = await self._publisher.publish(topic, messages)
            except PublishFailed as exc:
                error = describe_error(exc)
                if self._health is not None:
                    self._health.down(PUBSUB, error)
                if attempt == self._attempts:
                    raise
                log.warning("producer.publish_retry", topic=topic, attempt=attempt, error=error)
                await asyncio.sleep(backoff.next_delay())
            else:
                if self._health is not None:
                    self._health.up(PUBSUB)
                return ids
        raise AssertionError("unreachable: the last attempt returns or raises")
