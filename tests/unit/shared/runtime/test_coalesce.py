"""The coalescer that merges concurrent point reads into one multi-key read."""

from __future__ import annotations

import asyncio

import pytest

from ecom_shared.runtime.coalesce import Coalescer


class Reads:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[list[int]] = []
        self.fail = fail

    async def fetch(self, keys: list[int]) -> dict[int, list[str]]:
        self.calls.append(sorted(keys))
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        return {k: [f"row {k}"] for k in keys if k % 2 == 0}


async def test_concurrent_callers_share_one_read_and_each_gets_its_own_answer() -> None:
    reads = Reads()
    lookups = Coalescer(reads.fetch, list)
    answers = await asyncio.gather(*(lookups.get(k) for k in (1, 2, 3, 4, 2)))
    assert reads.calls == [[1, 2, 3, 4]]  # one read; the repeated key asked once
    assert answers == [[], ["row 2"], [], ["row 4"], ["row 2"]]


async def test_a_full_batch_is_read_at_once_and_the_rest_after_the_window() -> None:
    reads = Reads()
    lookups = Coalescer(reads.fetch, list, window=0.01, max_keys=3)
    await asyncio.gather(*(lookups.get(k) for k in range(5)))
    assert reads.calls == [[0, 1, 2], [3, 4]]


async def test_callers_apart_in_time_get_separate_reads() -> None:
    reads = Reads()
    lookups = Coalescer(reads.fetch, list)
    assert await lookups.get(2) == ["row 2"]
    assert await lookups.get(4) == ["row 4"]
    assert reads.calls == [[2], [4]]


async def test_every_caller_gets_the_error_of_the_shared_read() -> None:
    reads = Reads(fail=TimeoutError("read timed out"))
    lookups = Coalescer(reads.fetch, list)
    results = await asyncio.gather(*(lookups.get(k) for k in (1, 2)), return_exceptions=True)
    assert [type(r) for r in results] == [TimeoutError, TimeoutError]
    assert len(reads.calls) == 1


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    reads = Reads()
    lookups = Coalescer(reads.fetch, list, window=0.01)
    gone = asyncio.create_task(lookups.get(2))
    stays = asyncio.create_task(lookups.get(4))
    await asyncio.sleep(0)
    gone.cancel()
    assert await stays == ["row 4"]
    with pytest.raises(asyncio.CancelledError):
        await gone
