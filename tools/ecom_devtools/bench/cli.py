"""``ecom-bench``: start a private Cassandra and emulator, run the scenarios, report.

    ecom-bench                    # every scenario at full size
    ecom-bench --smoke            # tiny sizes, for CI
    ecom-bench --only order_drain,payment_drain --profile
    ecom-bench --only report --keep-data  # ecom-report's engines on 1M orders

Prints a table, writes ``results.json``, ``table.txt`` and PNG plots to ``--out``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from ecom_devtools.bench import dlq, drains, e2e, plots, report_engines, verifier
from ecom_devtools.bench.context import Bench
from ecom_devtools.bench.options import BenchOptions, parse_options
from ecom_devtools.bench.report import RSS_LIMIT_BYTES, table, write_json
from ecom_devtools.bench.results import Failures, Machine, RunReport, ScenarioSeconds
from ecom_devtools.bench.stack import Infra
from ecom_devtools.local.cassandra import CassandraNode
from ecom_devtools.local.emulator import PubSubEmulator
from ecom_devtools.local.infra import started_infra
from ecom_shared.cassandra.session import cassandra_session
from ecom_shared.error_text import describe_error
from ecom_shared.observability.logs import configure_logging
from ecom_shared.settings import CassandraSettings, LogSettings

Scenario = Callable[[Bench], Awaitable[None]]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> Machine:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    return Machine(
        nproc=os.cpu_count(),
        cpu_model=model,
        memory_gib=round(total_kib / 2**20, 1),
        load_average_at_start=[round(x, 2) for x in os.getloadavg()],
        python=platform.python_version(),
        kernel=platform.release(),
    )


def _plan(options: BenchOptions) -> list[tuple[str, Scenario]]:
    steps: list[tuple[str, Scenario]] = []
    if set(options.only) - {"verifier", "report"}:  # these write their rows straight: no warm-up
        steps.append(("warm_up", drains.warm_up))
    if {"ceilings", "order_drain", "payment_drain"} & set(options.only):
        steps.append(("drain_rounds", drains.drain_rounds))
    wanted: list[tuple[str, Scenario]] = [
        ("dlq_pass", dlq.dlq_pass),
        ("tombstones", dlq.tombstones),
        ("e2e", e2e.end_to_end),
        ("scale_out", drains.scale_out),
        ("verifier", verifier.verifier),
        ("report", report_engines.report),
    ]
    steps += [(name, step) for name, step in wanted if options.wants(name)]
    if options.profile:
        steps.append(("profiles", drains.profiled_drains))
    return steps


async def _fresh_emulator(bench: Bench, emulator: PubSubEmulator) -> None:
    """Restart the emulator before each measurement: it holds memory across scenarios even
    after their topics and subscriptions are deleted (a full run exhausted 1 GB of direct
    memory without this), and every measurement then starts from the same state."""
    await asyncio.to_thread(emulator.stop)
    await asyncio.to_thread(emulator.start)
    await emulator.wait_ready(120)
    if emulator.pid is not None:
        bench.server_pids["emulator"] = emulator.pid


async def _run_all(bench: Bench, emulator: PubSubEmulator) -> None:
    seconds: dict[str, float] = {}
    if not bench.options.smoke:  # smoke volumes are far too small to need it
        bench.fresh_emulator = lambda: _fresh_emulator(bench, emulator)
    for name, step in _plan(bench.options):
        say(f"ecom-bench: {name} ...")
        began = time.monotonic()
        try:
            await step(bench)
        except Exception as exc:  # noqa: BLE001 - one failed scenario must not lose the others
            error = describe_error(exc, limit=1000)
            say(f"ecom-bench: {name} FAILED: {error}")
            failures = bench.results.get("failures", Failures) or Failures({})
            bench.results.record("failures", failures.with_failure(name, error))
        seconds[name] = round(seconds.get(name, 0.0) + time.monotonic() - began, 1)
        say(f"ecom-bench: {name} done in {time.monotonic() - began:.1f} s")
    bench.results.record("memory", e2e.memory_section(bench, RSS_LIMIT_BYTES))
    bench.results.record("scenario_seconds", ScenarioSeconds(seconds))


@contextlib.asynccontextmanager
async def bench_infra(
    base_dir: Path, options: BenchOptions
) -> AsyncIterator[tuple[CassandraNode, PubSubEmulator]]:
    """:func:`~ecom_devtools.local.infra.started_infra` on the benchmark's ports and emulator
    heap."""
    async with started_infra(
        base_dir,
        options.cql_port,
        options.storage_port,
        options.jmx_port,
        options.pubsub_port,
        emulator_heap=options.emulator_heap,
    ) as servers:
        yield servers


async def run(options: BenchOptions) -> RunReport:
    infra_dir = options.dir / "infra"
    if not options.keep_data:
        shutil.rmtree(infra_dir, ignore_errors=True)  # a fresh node: no tables from earlier runs
    infra = Infra(
        cql_port=options.cql_port,
        pubsub_host_port=f"127.0.0.1:{options.pubsub_port}",
        logs=options.out / "logs",
        cassandra_log=infra_dir / "cassandra" / "logs" / "system.log",
    )
    began = time.monotonic()
    say(f"ecom-bench: starting Cassandra and the emulator in {infra_dir}")
    async with bench_infra(infra_dir, options) as (node, emulator):
        servers = {"cassandra": node.pid, "emulator": emulator.pid}
        cql_settings = CassandraSettings(port=options.cql_port, request_timeout_seconds=60)
        async with cassandra_session(cql_settings) as session:
            bench = Bench(options, infra, session, {k: v for k, v in servers.items() if v})
            await _run_all(bench, emulator)
    if not options.keep_data:
        shutil.rmtree(infra_dir / "cassandra" / "data", ignore_errors=True)
    report = RunReport(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        smoke=options.smoke,
        machine=machine(),
        sizes=vars(options.sizes),
        total_seconds=round(time.monotonic() - began, 1),
        results=bench.results,
    )
    _write(options, bench, report)
    return report


def _write(options: BenchOptions, bench: Bench, report: RunReport) -> None:
    text = table(report.results)
    options.out.mkdir(parents=True, exist_ok=True)
    write_json(options.out / "results.json", report.as_json())
    (options.out / "table.txt").write_text(text + "\n")
    if options.plots:
        plots.throughput(bench, options.out / "throughput.png")
        plots.latency(bench, options.out / "latency.png")
    print(text, flush=True)
    say(f"ecom-bench: results in {options.out}")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # asyncio.run then cancels the scenario: everything is stopped


def main(argv: list[str] | None = None) -> int:
    # Also when started in the background (where SIGINT is ignored), SIGINT and SIGTERM
    # stop the services and the infrastructure this run started.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    options = parse_options(argv, datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    configure_logging(LogSettings(level="WARNING", json_output=False), service="bench")
    asyncio.run(run(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
