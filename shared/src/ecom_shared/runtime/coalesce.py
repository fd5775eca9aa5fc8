"""Merging the point reads of concurrent callers into one multi-key read.

The order consumer looks in the DLQ table once per order, and hundreds of orders are handled
at once. One request per look would cost Cassandra about as much as the order write itself;
one ``IN`` read for the keys asked within a millisecond costs a fraction of that. Each caller
still awaits only its own answer, or the error the shared read raised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from ecom_shared.runtime.microbatch import MicroBatcher

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[list[K]], Awaitable[dict[K, V]]]
"""Reads many keys at once; keys missing from the answer get the coalescer's default."""


class Coalescer(Generic[K, V]):
    """Collects keys for up to ``window`` seconds (or ``max_keys`` lookups), then reads them
    in one call of ``fetch``; a key asked by several callers is read once."""

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
        self._lookups: MicroBatcher[None, K, V] = MicroBatcher(
            self._read, max_delay=window, max_size=max_keys
        )

    async def get(self, key: K) -> V:
        return await self._lookups.submit(None, key)

    async def _read(self, _: None, keys: list[K]) -> list[V]:
        found = await self._fetch(list(dict.fromkeys(keys)))
        return [found[key] if key in found else self._default() for key in keys]
