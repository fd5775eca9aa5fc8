"""The DLQ worker: one pass over parked payments whose orders exist, and one over a DLQ
table that has seen many deletes (tombstones), with what Cassandra says about it."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from ecom_devtools.bench.context import Bench, ratio
from ecom_devtools.bench.measure import CpuMeter, scan, wait_exit
from ecom_devtools.bench.run_results import DlqPass, TimedPass, Tombstones, WorkerPass
from ecom_devtools.bench.stack import Stage, running, staged
from ecom_devtools.bench.workload import ID_BASE, delete_parked, seed_orders, seed_parked
from ecom_shared.error_text import clip

_LOG_LINES_KEPT = 5


def _innermost_error(crash: dict[str, Any]) -> str | None:
    """The last ``exc_type: exc_value`` of a structlog exception record (the root cause)."""
    found = re.findall(r"'exc_type': '([^']*)', 'exc_value': ('[^']*'|\"[^\"]*\")", str(crash))
    return clip(f"{found[-1][0]}: {found[-1][1][1:-1]}", 600) if found else None


def _last_event(lines: list[str], event: str) -> dict[str, Any]:
    for line in reversed(lines):
        if f'"{event}"' in line:
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                return parsed
    return {}


async def worker_pass(
    bench: Bench, stage: Stage, timeout: float, env: dict[str, str] | None = None
) -> WorkerPass:
    """Run ``ecom-dlq-worker --once``; its own pass report, exit code, wall time and CPU."""
    worker = stage.service("dlq-worker", ["--once"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with running(stage, [worker], env) as procs:
        meter = CpuMeter({**procs.pids(), **bench.server_pids}).start()
        code = await wait_exit(worker, timeout, meter)
        cores = meter.stop()
    lines = worker.log_path.read_text(errors="replace").splitlines()
    report = _last_event(lines, "dlq.pass_done")
    crash = _last_event(lines, "service.crashed")
    return WorkerPass(
        exit_code=code,
        wall_seconds=round(loop.time() - started, 3),
        pass_seconds=report.get("seconds"),
        scanned=report.get("scanned", 0),
        reconciled=report.get("reconciled", 0),
        waiting=report.get("waiting", 0),
        failed=report.get("failed", 0),
        range_splits=sum('"cassandra.range_split"' in line for line in lines),
        error=_innermost_error(crash),
        cpu_cores=cores,
    )


async def dlq_pass(bench: Bench) -> None:
    """N parked payments whose orders all exist: one pass joins and clears them all."""
    count = bench.options.sizes.dlq_rows
    await bench.fresh_emulator()
    async with staged(bench.infra, "dlq-pass") as stage:
        bench.results.record("dlq_pass", await _dlq_pass_on(bench, stage, count))


async def _dlq_pass_on(bench: Bench, stage: Stage, count: int) -> DlqPass:
    ids = list(range(ID_BASE, ID_BASE + count))
    await seed_orders(bench.cql, stage, ids)
    await seed_parked(bench.cql, stage, ids)
    measured = await worker_pass(bench, stage, timeout=60 + count / 100)
    joined = [s for (s,) in await scan(bench.cql, stage.orders_table, ["payment_source"])]
    left = await scan(bench.cql, stage.dlq_table, ["order_id"])
    rate = measured.reconciled / measured.pass_seconds if measured.pass_seconds else 0.0
    ceiling = bench.ceiling("payments")
    return DlqPass(
        parked=count,
        worker=measured,
        joined_rows=sum(1 for s in joined if s == "dlq"),
        left_in_dlq=len(left),
        rate=round(rate, 1),
        ceiling=ceiling,
        ratio=ratio(rate, ceiling),
    )


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tombstone_lines(path: Path, offset: int) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if "tombstone" in line.lower()]


async def _seed_waiting(bench: Bench, stage: Stage, live: int) -> None:
    # Payments whose order never came: the pass reads them, counts them waiting, keeps them.
    await seed_parked(bench.cql, stage, list(range(ID_BASE * 3, ID_BASE * 3 + live)))


async def tombstones(bench: Bench) -> None:
    """A pass over a DLQ table after many deletes, against a pass over a clean one."""
    sizes = bench.options.sizes
    async with staged(bench.infra, "dlq-clean") as clean:
        await _seed_waiting(bench, clean, sizes.tombstone_live)
        floor = await worker_pass(bench, clean, timeout=120)
    async with staged(bench.infra, "dlq-tomb") as stage:
        bench.results.record("tombstones", await _tombstones_on(bench, stage, floor))


async def _tombstones_on(bench: Bench, stage: Stage, floor: WorkerPass) -> Tombstones:
    sizes = bench.options.sizes
    await _seed_waiting(bench, stage, sizes.tombstone_live)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await delete_parked(bench.cql, stage, list(range(ID_BASE, ID_BASE + sizes.tombstones)))
    delete_seconds = loop.time() - started
    log = bench.infra.cassandra_log
    offset = _log_size(log)
    timeout = 600 + sizes.tombstones / 500
    measured = await worker_pass(bench, stage, timeout)
    await asyncio.sleep(0.5)  # let Cassandra's logger write what the pass caused
    lines = _tombstone_lines(log, offset)
    floor_seconds = floor.seconds
    # The same table read from a single range for the whole ring: past 100,000 tombstones
    # Cassandra refuses the read, and the worker must split its way through.
    one_range = await worker_pass(bench, stage, timeout, {"ECOM_WORKER__TOKEN_SEGMENTS": "1"})
    return Tombstones(
        one_range=TimedPass(one_range, one_range.seconds, ratio(floor_seconds, one_range.seconds)),
        deletes=sizes.tombstones,
        live_rows=sizes.tombstone_live,
        delete_seconds=round(delete_seconds, 1),
        timed=TimedPass(measured, measured.seconds, ratio(floor_seconds, measured.seconds)),
        clean_pass_seconds=floor_seconds,
        cassandra_warnings=sum(1 for line in lines if line.startswith("WARN")),
        cassandra_errors=sum(1 for line in lines if line.startswith("ERROR")),
        cassandra_lines=[clip(line, 400) for line in lines[:_LOG_LINES_KEPT]],
    )
