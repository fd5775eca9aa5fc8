"""Measurement helpers: rows in Cassandra and when they were written, CPU time, peak memory.

Throughput is read from the rows themselves: every write the services make records the
writer's clock (``order_ingested_at``, ``payment_ingested_at``, ``parked_at``), and so do the
minimal consumers, so a drain's rate is rows / (last write - first write) for product and
ceiling alike. While a drain runs, the benchmark only polls a fixed random sample of the ids
(one small ``IN`` query every quarter second); the whole table is read once, at the end.
Nothing is scraped from the services' logs for these figures.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import acsylla

from ecom_devtools.local.services import ServiceProcess
from ecom_shared.cassandra.session import Session
from ecom_shared.clock import as_utc

_SAMPLE = 200
_POLL_SECONDS = 0.25
_PAGE = 5000


class BenchError(RuntimeError):
    """A scenario could not finish (a service died, or rows never appeared)."""


def epoch(value: datetime | None) -> float | None:
    """Seconds since the epoch of a time as acsylla returns it (naive, in UTC)."""
    return None if value is None else as_utc(value).timestamp()


async def scan(session: Session, table: str, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """Every row of ``table`` (its ``columns``), read page by page."""
    rows: list[tuple[Any, ...]] = []
    page_state: bytes | None = None
    cql = f"SELECT {', '.join(columns)} FROM {table}"
    while True:
        statement = acsylla.create_statement(cql, page_size=_PAGE, page_state=page_state)
        result = await session.execute(statement)
        rows.extend(tuple(row.column_value(c) for c in columns) for row in result)
        if not result.has_more_pages():
            return rows
        page_state = result.page_state()


async def _sample_present(session: Session, table: str, column: str, ids: Sequence[int]) -> int:
    listed = ", ".join(str(int(i)) for i in ids)
    cql = f"SELECT {column} FROM {table} WHERE order_id IN ({listed})"
    result = await session.execute(acsylla.create_statement(cql))
    return sum(1 for row in result if row.column_value(column) is not None)


async def wait_written(
    session: Session,
    table: str,
    column: str,
    ids: Sequence[int],
    *,
    timeout: float,
    alive: Callable[[], bool] = lambda: True,
) -> list[float]:
    """Wait until ``column`` is set in a row for each of ``ids``; return each write time."""
    rng = random.Random(1)  # noqa: S311 - picks a sample of rows, not a secret
    sample = rng.sample(list(ids), min(_SAMPLE, len(ids)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if not alive():
            raise BenchError(f"a service exited while {table}.{column} was being written")
        if await _sample_present(session, table, column, sample) == len(sample):
            times = [t for (t,) in await scan(session, table, [column]) if t is not None]
            if len(times) >= len(ids):
                return sorted(e for e in map(epoch, times) if e is not None)
        await asyncio.sleep(_POLL_SECONDS)
    raise BenchError(f"{table}.{column}: not all {len(ids)} rows written within {timeout:.0f} s")


async def wait_exit(process: ServiceProcess, timeout: float, meter: CpuMeter | None = None) -> int:
    """Wait for a process that ends by itself (a ``--once`` pass, the producer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (code := process.poll()) is None:
        if meter is not None:
            meter.sample()
        if loop.time() > deadline:
            raise BenchError(f"{process.name} did not finish within {timeout:.0f} s")
        await asyncio.sleep(0.1)
    return code


async def wait_first(
    session: Session,
    table: str,
    column: str,
    ids: Sequence[int],
    *,
    timeout: float,
    alive: Callable[[], bool],
) -> None:
    """Wait until the first of a sample of ``ids`` has ``column`` set (the consumer is at work)."""
    rng = random.Random(2)  # noqa: S311 - picks a sample of rows, not a secret
    sample = rng.sample(list(ids), min(_SAMPLE, len(ids)))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if not alive():
            raise BenchError(f"a service exited before writing {table}.{column}")
        if await _sample_present(session, table, column, sample):
            return
        await asyncio.sleep(0.05)
    raise BenchError(f"no row of {table} got {column} within {timeout:.0f} s")


@dataclass(frozen=True)
class Drain:
    """How fast rows were written: from the first write to the last."""

    count: int
    first: float
    last: float
    timeline: list[tuple[float, float]] = field(repr=False)  # (seconds since first, rows/s)

    @property
    def seconds(self) -> float:
        return max(self.last - self.first, 1e-3)

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @staticmethod
    def of(times: Sequence[float]) -> Drain:
        return Drain(len(times), times[0], times[-1], timeline(times))


def timeline(times: Sequence[float], bins: int = 60) -> list[tuple[float, float]]:
    """Rows written per second over time, in about ``bins`` equal steps."""
    if not times:
        return []
    span = times[-1] - times[0]
    width = max(span / bins, 0.1)
    counts = [0] * (int(span / width) + 1)
    for t in times:
        counts[int((t - times[0]) / width)] += 1
    return [(round(i * width, 3), round(c / width, 1)) for i, c in enumerate(counts)]


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (share in [0, 1])."""
    rank = max(1, math.ceil(share * len(values)))
    return values[rank - 1]


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of ``pid`` so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CpuMeter:
    """CPU time each process spent between ``start`` and ``stop``, as a share of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._before: dict[str, float] = {}
        self._started = 0.0
        self.wall = 0.0  # seconds between start and stop
        self._last: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._started = asyncio.get_running_loop().time()
        self._before = {n: c for n, p in self._pids.items() if (c := cpu_seconds(p)) is not None}
        return self

    def sample(self) -> None:
        """Note each process's CPU time now: a process that exits by itself keeps its last."""
        for name, pid in self._pids.items():
            if (now := cpu_seconds(pid)) is not None:
                self._last[name] = now

    def stop(self) -> dict[str, float]:
        """Process name -> cores used on average (1.0 = one core busy all the time)."""
        self.wall = wall = max(asyncio.get_running_loop().time() - self._started, 1e-3)
        self.sample()
        return {
            name: round((self._last[name] - before) / wall, 3)
            for name, before in self._before.items()
            if name in self._last
        }
