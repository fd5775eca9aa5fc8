"""The ``report`` scenario: ``ecom-report``'s two engines on a table of N orders.

The table is filled once (:mod:`ecom_devtools.bench.report_rows`; a table that already holds
N orders, as a run with ``--keep-data`` leaves it, is reused). Then, each in a process of its
own (:mod:`ecom_devtools.bench.report_probe`) so that each peak RSS is its own: the bare
acsylla scan that the embedded engine makes, and the embedded engine (scan into DuckDB, then
the figures), alternating in ``--report-rounds`` rounds (bare first in odd rounds, embedded
first in even ones) so that a drift of the machine favours neither; then the Spark engine
once. The embedded engine's figures must equal Spark's.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ecom_devtools.bench.context import Bench
from ecom_devtools.bench.measure import BenchError
from ecom_devtools.bench.report_probe import ScanPlan
from ecom_devtools.bench.report_results import ProbeRun, ReportBench, ScanRound, differences
from ecom_devtools.bench.report_rows import AS_OF, fill, is_filled, parked_count, settings
from ecom_devtools.errors import InfraError
from ecom_report import columns, embedded
from ecom_shared.error_text import describe_error
from ecom_shared.settings import CassandraSettings


def say(message: str) -> None:
    print(f"ecom-bench: report: {message}", file=sys.stderr, flush=True)


def scan_plan(config: CassandraSettings) -> ScanPlan:
    """The embedded engine's scan of both tables, with its own settings."""
    return ScanPlan(
        selects=(
            embedded.scan_statement(columns.ORDERS, f"{config.keyspace}.{config.orders_table}"),
            embedded.scan_statement(columns.PARKED, f"{config.keyspace}.{config.dlq_table}"),
        ),
        page_size=embedded.PAGE_SIZE,
        segments=embedded.SEGMENTS,
        readers=embedded.READERS,
        attempts=embedded.PAGE_ATTEMPTS,
    )


def probe_argv(mode: str, config: CassandraSettings, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "ecom_devtools.bench.report_probe", mode,
        "--port", str(config.port), "--keyspace", config.keyspace,
        "--orders-table", config.orders_table, "--dlq-table", config.dlq_table, *extra,
    ]  # fmt: skip


def last_json(text: str) -> dict[str, Any]:
    """The probe's figures: the last line of its output that is a JSON object."""
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                return parsed
    return {}


async def run_probe(name: str, argv: list[str], log: Path, timeout: float) -> dict[str, Any]:
    """Run probe ``name`` to its end; its output goes to ``log``; its JSON line is returned."""
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=out, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL
        )
        try:
            code = await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise BenchError(f"{name} probe did not finish within {timeout:.0f} s") from None
    text = await asyncio.to_thread(log.read_text, errors="replace")
    measured = last_json(text)
    if code != 0 or "total_seconds" not in measured:
        raise BenchError(f"{name} probe exited {code}: {text[-1500:]}")
    return measured


async def report(bench: Bench) -> None:
    """The ``report`` section."""
    orders = bench.options.sizes.report_rows
    config = settings(bench.options.cql_port)
    fill_seconds: float | None = None
    reused = await is_filled(bench.cql, config, orders)
    if reused:
        say(f"{config.keyspace}.{config.orders_table} already holds {orders:,} orders: reused")
    else:
        say(f"filling {config.keyspace}.{config.orders_table} with {orders:,} orders")
        began = asyncio.get_running_loop().time()
        await fill(bench.cql, config, orders)
        fill_seconds = round(asyncio.get_running_loop().time() - began, 1)
        say(f"filled in {fill_seconds} s")
    work = bench.infra.logs / "report"
    work.mkdir(parents=True, exist_ok=True)
    timeout = 300 + orders / 1000
    rounds, figures = await _rounds(bench, config, work, timeout)
    spark, spark_figures, spark_error = await _spark(config, work, timeout)
    bench.results.record(
        "report",
        ReportBench(
            orders=orders,
            parked=parked_count(orders),
            reused=reused,
            fill_seconds=fill_seconds,
            rounds=rounds,
            spark=spark,
            spark_error=spark_error,
            figures_differ=None if spark_figures is None else differences(figures, spark_figures),
        ),
    )


async def _rounds(
    bench: Bench, config: CassandraSettings, work: Path, timeout: float
) -> tuple[list[ScanRound], dict[str, Any]]:
    """The paired rounds, and the embedded engine's figures (the last round's)."""
    extra = {
        "bare": ["--plan", scan_plan(config).as_arg()],
        "embedded": ["--as-of", AS_OF.isoformat()],
    }
    rounds: list[ScanRound] = []
    figures: dict[str, Any] = {}
    for number in range(1, bench.options.sizes.report_rounds + 1):
        order = ("bare", "embedded") if number % 2 else ("embedded", "bare")
        runs: dict[str, ProbeRun] = {}
        for mode in order:
            log = work / f"{mode}-{number}.log"
            measured = await run_probe(mode, probe_argv(mode, config, extra[mode]), log, timeout)
            runs[mode] = ProbeRun.of(mode, measured)
            figures = measured.get("figures", figures)
            say(f"round {number}: {mode} {runs[mode].rows_per_s or 0:,.0f} rows/s")
        rounds.append(ScanRound(number, runs["bare"], runs["embedded"]))
    return rounds, figures


async def _spark(
    config: CassandraSettings, work: Path, timeout: float
) -> tuple[ProbeRun | None, dict[str, Any] | None, str | None]:
    """Spark's run, its figures, or why it could not run (the rest of the section stands)."""
    from ecom_devtools.local.spark import connector_jars, require_pyspark  # noqa: PLC0415

    try:
        require_pyspark()
        jars = await asyncio.to_thread(connector_jars)
        extra = ["--as-of", AS_OF.isoformat(), *(f"--jar={jar}" for jar in jars)]
        argv = probe_argv("spark", config, extra)
        measured = await run_probe("spark", argv, work / "spark.log", timeout + 600)
    except (BenchError, InfraError, OSError) as exc:
        error = describe_error(exc, limit=1000)
        say(f"spark FAILED: {error}")
        return None, None, error
    run = ProbeRun.of("spark", measured)
    say(f"spark: {run.total_seconds:.1f} s")
    return run, measured.get("figures"), None
