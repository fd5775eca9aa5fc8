"""``scan_by_token``: every range once, page by page, prefetching, retrying transient errors,
splitting a range that holds too many tombstones; ``scan_pages``: the same scan by several
readers at once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import acsylla
import pytest

from ecom_shared.cassandra.session import (
    MAX_TOKEN,
    MIN_TOKEN,
    scan_by_token,
    scan_pages,
    split_range,
    token_ranges,
)
from ecom_shared.errors import StoreUnavailable


class Statement:
    def __init__(self, values: list[int]) -> None:
        self.low, self.high = values
        self.page_state: bytes | None = None

    def set_is_idempotent(self, value: bool) -> None:
        assert value

    def set_page_size(self, size: int) -> None:
        assert size == 2

    def set_page_state(self, state: bytes) -> None:
        self.page_state = state


class Prepared:
    def bind(self, values: list[int]) -> Statement:
        return Statement(values)


class Result:
    def __init__(self, rows: list[int], state: bytes | None) -> None:
        self.rows, self.state = rows, state

    def __iter__(self) -> Iterator[int]:
        return iter(self.rows)

    def has_more_pages(self) -> bool:
        return self.state is not None

    def page_state(self) -> bytes | None:
        return self.state


class Session:
    """Range i of 4 holds rows 10*i .. 10*i+2, served two at a time."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.ranges = token_ranges(4)
        self.failures = failures or []
        self.calls: list[tuple[int, bytes | None]] = []

    async def execute(self, statement: Statement) -> Result:
        index = self.ranges.index((statement.low, statement.high))
        self.calls.append((index, statement.page_state))
        if self.failures:
            raise self.failures.pop(0)
        rows = [10 * index + k for k in range(3)]
        if statement.page_state is None:
            return Result(rows[:2], b"next")
        return Result(rows[2:], None)


async def scan(session: Session, **options: Any) -> list[int]:
    return [
        row async for row in scan_by_token(session, Prepared(), page_size=2, segments=4, **options)
    ]


def test_ranges_cover_the_ring_without_overlap() -> None:
    ranges = token_ranges(64)
    assert ranges[0][0] == MIN_TOKEN
    assert ranges[-1][1] == MAX_TOKEN
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))


@pytest.mark.parametrize("prefetch", [False, True])
async def test_every_row_once_in_order(prefetch: bool) -> None:
    session = Session()
    assert await scan(session, prefetch=prefetch) == [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32]
    assert session.calls == [(i, s) for i in range(4) for s in (None, b"next")]


async def test_a_transient_error_is_retried_and_a_lasting_one_raised() -> None:
    session = Session([acsylla.errors.CassErrorLibRequestTimedOut("timed out")])
    assert len(await scan(session, attempts=3)) == 12
    assert session.calls[:2] == [(0, None), (0, None)]  # the same page asked for again
    session = Session([acsylla.errors.CassErrorLibRequestTimedOut("timed out")] * 2)
    with pytest.raises(StoreUnavailable) as raised:
        await scan(session, attempts=2)
    assert raised.value.driver_error == "CassErrorLibRequestTimedOut"
    session = Session([acsylla.errors.CassErrorServerSyntaxError("bad query")])
    with pytest.raises(acsylla.errors.CassErrorServerSyntaxError):
        await scan(session, attempts=5)
    assert len(session.calls) == 1  # not transient: no retry


async def test_stopping_early_leaves_no_page_pending() -> None:
    session = Session()
    scanner = scan_by_token(session, Prepared(), page_size=2, segments=4, prefetch=True)
    assert await anext(scanner) == 0
    await scanner.aclose()  # the prefetched page is cancelled, no task is left behind
    assert len(session.calls) <= 2


def test_a_range_splits_into_contiguous_parts() -> None:
    parts = split_range((-10, 21), 4)
    assert parts == [(-10, -3), (-2, 5), (6, 13), (14, 21)]
    assert split_range((5, 7), 16) == [(5, 5), (6, 6), (7, 7)]  # no more parts than tokens
    assert split_range((9, 9), 16) == [(9, 9)]


class Sparse:
    """Live rows at a few tokens among many tombstones; like Cassandra, a query that meets
    more than ``threshold`` tombstones fails with READ_TOO_MANY_TOMBSTONES."""

    def __init__(self, live: list[int], tombstones: list[int], threshold: int) -> None:
        self.live, self.tombstones, self.threshold = sorted(live), tombstones, threshold
        self.queries: list[tuple[int, int]] = []

    async def execute(self, statement: Statement) -> Result:
        low, high = statement.low, statement.high
        self.queries.append((low, high))
        if sum(low <= t <= high for t in self.tombstones) > self.threshold:
            raise acsylla.errors.CassErrorServerReadFailure(
                "Read failure: Operation failed - received 0 responses and 1 failures: "
                "READ_TOO_MANY_TOMBSTONES"
            )
        rows = [t for t in self.live if low <= t <= high]
        if statement.page_state is None:
            return Result(rows[:2], b"next" if len(rows) > 2 else None)
        return Result(rows[2:], None)


async def test_a_range_with_too_many_tombstones_is_read_in_smaller_parts() -> None:
    live = [-(2**40), 3, 500, 501, 502, 2**50]
    session = Sparse(live, tombstones=list(range(0, 2000, 10)), threshold=20)
    rows = [r async for r in scan_by_token(session, Prepared(), page_size=2, segments=4)]
    assert rows == live  # every live row once, in token order
    assert any(high - low < 1000 for low, high in session.queries)  # it split that far


async def test_other_read_failures_and_a_dense_single_token_still_raise() -> None:
    one_token = Sparse([5], tombstones=[5] * 30, threshold=20)
    with pytest.raises(StoreUnavailable, match="CassErrorServerReadFailure"):
        _ = [r async for r in scan_by_token(one_token, Prepared(), page_size=2, segments=1)]
    assert one_token.queries[-1] == (5, 5)  # split down to the single token first

    class Failing(Sparse):
        async def execute(self, statement: Statement) -> Result:
            self.queries.append((statement.low, statement.high))
            raise acsylla.errors.CassErrorServerReadFailure("Read failure: UNKNOWN")

    failing = Failing([], [], 0)
    with pytest.raises(StoreUnavailable, match="CassErrorServerReadFailure"):
        _ = [r async for r in scan_by_token(failing, Prepared(), page_size=2, segments=2)]
    assert len(failing.queries) == 1  # not about tombstones: no split, no retry


async def test_a_range_with_too_many_tombstones_is_split_at_once_not_retried() -> None:
    session = Sparse([3, 500], tombstones=list(range(0, 2000, 10)), threshold=20)
    rows = [
        r async for r in scan_by_token(session, Prepared(), page_size=2, segments=1, attempts=5)
    ]
    assert rows == [3, 500]
    assert session.queries[0] != session.queries[1]  # the refused range was split, not asked again


def readers_left() -> list[asyncio.Task[Any]]:
    return [
        t
        for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__qualname__", "") == "scan_pages.<locals>.read"
    ]


async def pages(session: Any, parallel: int, **options: Any) -> list[list[int]]:
    scanner = scan_pages(session, Prepared(), page_size=2, segments=4, parallel=parallel, **options)
    return [list(page) async for page in scanner]


@pytest.mark.parametrize("parallel", [1, 2, 4, 9])
async def test_parallel_readers_hand_out_every_page_once(parallel: int) -> None:
    session = Session()
    got = await pages(session, parallel)
    assert sorted(row for page in got for row in page) == [
        0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32
    ]  # fmt: skip
    assert len(got) == 8  # two pages a range, none merged or lost
    assert sorted(session.calls, key=lambda c: (c[0], c[1] or b"")) == [
        (i, s) for i in range(4) for s in (None, b"next")
    ]


async def test_parallel_readers_run_at_once() -> None:
    class Slow(Session):
        def __init__(self) -> None:
            super().__init__()
            self.running = self.most = 0

        async def execute(self, statement: Statement) -> Result:
            self.running += 1
            self.most = max(self.most, self.running)
            await asyncio.sleep(0.01)
            self.running -= 1
            return await super().execute(statement)

    one, four = Slow(), Slow()
    await pages(one, 1)
    await pages(four, 4)
    assert one.most <= 2  # one reader: this page and the next
    assert four.most > 2


async def test_a_parallel_readers_failure_is_raised_and_the_others_stopped() -> None:
    session = Sparse([3, 2**50], tombstones=[], threshold=0)

    class Failing(Sparse):
        async def execute(self, statement: Statement) -> Result:
            if statement.low > 0:
                raise acsylla.errors.CassErrorServerSyntaxError("bad query")
            await asyncio.sleep(0.01)
            return await super().execute(statement)

    failing = Failing(session.live, [], 0)
    with pytest.raises(acsylla.errors.CassErrorServerSyntaxError):
        await pages(failing, 4)
    await asyncio.sleep(0.05)
    assert not readers_left()


async def test_a_parallel_scan_stopped_early_leaves_no_reader() -> None:
    scanner = scan_pages(Session(), Prepared(), page_size=2, segments=4, parallel=4)
    assert list(await anext(scanner))
    await scanner.aclose()
    assert not readers_left()
