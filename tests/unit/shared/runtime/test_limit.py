"""``AdaptiveLimit``: at most ``limit`` at once; back to the floor on failure, +1 per success."""

from __future__ import annotations

import asyncio

import pytest

from ecom_shared.runtime.limit import AdaptiveLimit


async def _hold(limit: AdaptiveLimit, release: asyncio.Event, entered: list[int], n: int) -> None:
    async with limit:
        entered.append(n)
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _free(limit: AdaptiveLimit) -> int:
    """How many enter at once now (they leave again at once): ``limit.limit`` unless a slot
    is held or was leaked."""
    release, entered = asyncio.Event(), list[int]()
    tasks = [asyncio.create_task(_hold(limit, release, entered, n)) for n in range(limit.limit + 1)]
    await _settle()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(entered)


async def test_at_most_the_limit_enter_and_the_rest_follow_in_order() -> None:
    limit, release, entered = AdaptiveLimit(3, 1), asyncio.Event(), list[int]()
    tasks = [asyncio.create_task(_hold(limit, release, entered, n)) for n in range(7)]
    await _settle()
    assert entered == [0, 1, 2]
    release.set()
    await asyncio.gather(*tasks)
    assert entered == list(range(7))
    assert await _free(limit) == 3


async def test_a_failure_drops_to_the_floor_and_each_success_adds_one() -> None:
    limit, release, entered = AdaptiveLimit(4, 1), asyncio.Event(), list[int]()
    assert limit.backed_off() is True
    assert limit.backed_off() is False  # already at the floor
    assert limit.limit == 1
    tasks = [asyncio.create_task(_hold(limit, release, entered, n)) for n in range(4)]
    await _settle()
    assert entered == [0]
    limit.succeeded()  # the limit grows to 2: one more is let in at once
    await _settle()
    assert (entered, limit.limit) == ([0, 1], 2)
    for _ in range(5):
        limit.succeeded()
    assert limit.limit == 4  # never past the maximum
    release.set()
    await asyncio.gather(*tasks)
    assert await _free(limit) == 4


async def test_holders_above_a_lowered_limit_keep_their_slots_and_no_one_new_enters() -> None:
    limit, release, entered = AdaptiveLimit(3, 1), asyncio.Event(), list[int]()
    first = [asyncio.create_task(_hold(limit, release, entered, n)) for n in range(3)]
    await _settle()
    limit.backed_off()
    late = asyncio.create_task(_hold(limit, release, entered, 3))
    await _settle()
    assert entered == [0, 1, 2]
    release.set()
    await asyncio.gather(*first, late)
    assert entered == [0, 1, 2, 3]
    assert await _free(limit) == 1  # the limit stayed at the floor: nothing succeeded


async def test_a_cancelled_waiter_leaks_no_slot() -> None:
    limit, release, entered = AdaptiveLimit(1, 1), asyncio.Event(), list[int]()
    holder = asyncio.create_task(_hold(limit, release, entered, 0))
    waiting = asyncio.create_task(_hold(limit, release, entered, 1))
    await _settle()
    waiting.cancel()  # cancelled while it waits
    release.set()
    await holder
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await _free(limit) == 1
    assert entered == [0]
    # Woken (its slot counted for it) and cancelled before it ran: the slot is handed back.
    await limit.__aenter__()
    woken = asyncio.create_task(limit.__aenter__())
    await _settle()
    await limit.__aexit__(None, None, None)  # hands the slot to `woken`, which has not run yet
    woken.cancel()
    with pytest.raises(asyncio.CancelledError):
        await woken
    assert await _free(limit) == 1


def test_the_floor_must_fit_under_the_maximum() -> None:
    with pytest.raises(ValueError, match="floor"):
        AdaptiveLimit(4, 5)
    with pytest.raises(ValueError, match="floor"):
        AdaptiveLimit(4, 0)
