"""The micro-batcher behind the coalesced reads and the batched publishes."""

from __future__ import annotations

import asyncio

from ecom_shared.runtime.microbatch import MicroBatcher


async def test_items_of_one_key_go_together_and_keys_stay_apart() -> None:
    calls: list[tuple[str, list[int]]] = []

    async def run(key: str, items: list[int]) -> list[int]:
        calls.append((key, items))
        return [item * 10 for item in items]

    batcher: MicroBatcher[str, int, int] = MicroBatcher(run, max_delay=0.01, max_size=100)
    got = await asyncio.gather(*(batcher.submit(k, i) for k, i in [("a", 1), ("b", 2), ("a", 3)]))
    assert got == [10, 20, 30]
    assert sorted(calls) == [("a", [1, 3]), ("b", [2])]


async def test_sizes_that_reach_the_maximum_go_at_once() -> None:
    async def run(_: None, items: list[str]) -> list[int]:
        return [len(item) for item in items]

    batcher: MicroBatcher[None, str, int] = MicroBatcher(run, max_delay=3600, max_size=5, size=len)
    assert await asyncio.wait_for(batcher.submit(None, "12345"), 5) == 5


async def test_a_run_that_answers_too_few_fails_every_caller_instead_of_hanging() -> None:
    async def run(_: None, items: list[int]) -> list[int]:
        return items[:1]

    batcher: MicroBatcher[None, int, int] = MicroBatcher(run, max_delay=0.01, max_size=10)
    results = await asyncio.gather(
        *(batcher.submit(None, i) for i in range(3)), return_exceptions=True
    )
    assert [type(r) for r in results] == [ValueError] * 3
    assert str(results[0]) == "1 results for 3"
