"""How many messages a consumer writes at once: a limit that backs off when Cassandra struggles.

A fixed limit sends the messages in hand at Cassandra as fast as it allows (512 writes at once
by default) the moment Cassandra answers again after an outage, or while it is overloaded: many
of them time out, and each timeout spends one of the message's delivery attempts. This limit
starts over from a small floor whenever a write fails because Cassandra did not answer in time
or at all, and grows by one with every message written (so it doubles with each round of
writes, as TCP's slow start does) back up to the configured maximum. On a healthy cluster it
sits at the maximum and costs one comparison per message.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType


class AdaptiveLimit:
    """An async context manager admitting at most :attr:`limit` holders at once."""

    def __init__(self, maximum: int, floor: int) -> None:
        if not 1 <= floor <= maximum:
            raise ValueError(f"need 1 <= floor <= maximum, got floor {floor}, maximum {maximum}")
        self._maximum = maximum
        self._floor = floor
        self._limit = maximum
        self._held = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self._limit

    async def __aenter__(self) -> None:
        if self._held < self._limit and not self._waiters:
            self._held += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the slot is counted for us before we are woken
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # woken and cancelled at once: hand the slot on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def succeeded(self) -> None:
        """One message was written: allow one more at once, up to the maximum."""
        if self._limit < self._maximum:
            self._limit += 1
            self._wake()

    def backed_off(self) -> bool:
        """Cassandra failed to answer: start over from the floor. True if the limit fell."""
        fell = self._limit > self._floor
        self._limit = self._floor
        return fell

    def _release(self) -> None:
        self._held -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._held < self._limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._held += 1
                waiter.set_result(None)
