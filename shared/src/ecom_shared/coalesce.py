"""Merging the point reads of concurrent callers into one multi-key read.

The order consumer looks in the DLQ table once per order, and hundreds of orders are handled
at once. One request per look would cost Cassandra about as much as the order write itself;
one ``IN`` read for the keys asked within a millisecond costs a fraction of that. Each caller
still awaits only its own answer, or the error the shared read raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[list[K]], Awaitable[dict[K, V]]]
"""Reads many keys at once; keys missing from the answer get the coalescer's default."""


class Coalescer(Generic[K, V]):
    """Collects keys for up to ``window`` seconds (or ``max_keys`` keys), then reads them in
    one call of ``fetch``."""

    def __init__(
        self,
        fetch: Fetch[K, V],
        default: Callable[[], V],
        *,
        window: float = 0.001,
        max_keys: int = 100,
    ) -> None:
        self._fetch = fetch
        self._default = default
        self._window = window
        self._max_keys = max_keys
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._reading: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        if len(self._waiting) >= self._max_keys:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._window, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, {}
        if waiting:
            task = asyncio.get_running_loop().create_task(self._read(waiting))
            self._reading.add(task)
            task.add_done_callback(self._reading.discard)

    async def _read(self, waiting: dict[K, list[asyncio.Future[V]]]) -> None:
        try:
            found = await self._fetch(list(waiting))
        except Exception as exc:  # noqa: BLE001 - every caller gets the shared read's error
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for key, futures in waiting.items():
            for future in futures:
                if not future.done():
                    future.set_result(found[key] if key in found else self._default())
