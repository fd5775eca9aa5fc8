"""Exponential backoff with full jitter, interruptible by a stop event."""

from __future__ import annotations

import asyncio
import contextlib
import random


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``; ``reset()`` after a success."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = initial
        self._maximum = maximum
        self.failures = 0

    def next_delay(self) -> float:
        ceiling = min(self._maximum, self._initial * 2 ** min(self.failures, 30))
        self.failures += 1
        # Jitter spreads many consumers' retries apart; it is not used for security.
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311

    def reset(self) -> None:
        self.failures = 0

    async def sleep(self, stop: asyncio.Event) -> bool:
        """Wait the next delay; return True if ``stop`` was set meanwhile."""
        return await wait_or_stop(stop, self.next_delay())


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; return True as soon as ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
