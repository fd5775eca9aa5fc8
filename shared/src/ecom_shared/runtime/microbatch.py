"""Micro-batching: what concurrent callers ask within a moment goes out in one call.

Callers submit items under a key (a topic; or one key for all). The items of one key wait
for up to ``max_delay`` seconds, or until their sizes add up to ``max_size``, then go to
``run`` together. Each caller awaits only its own result, or the error the shared call raised;
a caller cancelled meanwhile disturbs no other (its item, once handed over, still goes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

RunBatch = Callable[[K, list[T]], Awaitable[list[R]]]
"""Handles one key's items in one call; returns one result per item, in their order."""


def _one(_: object) -> int:
    return 1


@dataclass(slots=True)
class _Batch(Generic[T, R]):
    items: list[T] = field(default_factory=list)
    futures: list[asyncio.Future[R]] = field(default_factory=list)
    size: int = 0
    timer: asyncio.TimerHandle | None = None


class MicroBatcher(Generic[K, T, R]):
    """Collects items per key for up to ``max_delay`` seconds (or ``max_size``, counted by
    ``size``, 1 an item unless given), then hands them to ``run`` in one call."""

    def __init__(
        self,
        run: RunBatch[K, T, R],
        *,
        max_delay: float,
        max_size: int,
        size: Callable[[T], int] = _one,
    ) -> None:
        self._run = run
        self._max_delay = max_delay
        self._max_size = max_size
        self._size = size
        self._open: dict[K, _Batch[T, R]] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, key: K, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        batch = self._open.setdefault(key, _Batch())
        batch.items.append(item)
        batch.futures.append(future)
        batch.size += self._size(item)
        if batch.size >= self._max_size:
            self._flush(key)
        elif batch.timer is None:
            batch.timer = loop.call_later(self._max_delay, self._flush, key)
        return await future

    def _flush(self, key: K) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._run_batch(key, batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run_batch(self, key: K, batch: _Batch[T, R]) -> None:
        try:
            results = await self._run(key, batch.items)
        except Exception as exc:  # noqa: BLE001 - every caller gets the shared call's error
            _fail(batch.futures, exc)
            return
        if len(results) != len(batch.futures):  # a bug in ``run``: let no caller wait for ever
            _fail(batch.futures, ValueError(f"{len(results)} results for {len(batch.items)}"))
            return
        for future, result in zip(batch.futures, results, strict=True):
            if not future.done():  # a caller cancelled meanwhile no longer waits
                future.set_result(result)


def _fail(futures: list[asyncio.Future[R]], exc: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc)
