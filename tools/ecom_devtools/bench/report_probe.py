"""One measurement of the report benchmark, in a process of its own so that its peak memory is
its own: ``python -m ecom_devtools.bench.report_probe bare|embedded|spark ...``.

- ``bare``: the embedded engine's own scan (the same SELECTs, readers, page size, token
  ranges and retries, given by ``--plan``) through ``scan_pages``, every row turned into a
  tuple and dropped: what acsylla reads with no engine behind it.
- ``embedded``: ``EmbeddedEngine``, ``load()``, then ``compute()``.
- ``spark``: ``ecom_report.spark.figures`` in ``local[*]`` with the given connector jars.

It prints its figures as one JSON line, last (for the engines, with the report's figures).
Only the mode's own modules are imported, so the bare scan's memory is not the engine's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from ecom_shared.observability.logs import configure_logging
from ecom_shared.observability.procstat import peak_rss_bytes
from ecom_shared.settings import CassandraSettings, LogSettings


class ScanPlan(NamedTuple):
    """How the embedded engine scans: its SELECTs (orders, then parked) and scan settings."""

    selects: tuple[str, ...]
    page_size: int
    segments: int
    readers: int
    attempts: int

    def as_arg(self) -> str:
        return json.dumps(self._asdict())

    @staticmethod
    def of_arg(text: str) -> ScanPlan:
        data = json.loads(text)
        return ScanPlan(**{**data, "selects": tuple(data["selects"])})


async def _bare(settings: CassandraSettings, plan: ScanPlan) -> dict[str, Any]:
    from ecom_shared.cassandra.session import cassandra_session, scan_pages  # noqa: PLC0415

    async with cassandra_session(settings) as session:
        began = time.monotonic()
        rows = 0
        for select in plan.selects:
            prepared = await session.create_prepared(select)
            pages = scan_pages(
                session,
                prepared,
                page_size=plan.page_size,
                segments=plan.segments,
                parallel=plan.readers,
                attempts=plan.attempts,
            )
            async for page in pages:
                rows += len([row.as_tuple() for row in page])
        seconds = time.monotonic() - began
    return {"rows": rows, "scan_seconds": seconds, "total_seconds": seconds}


async def _embedded(settings: CassandraSettings, as_of: datetime) -> dict[str, Any]:
    from ecom_report.embedded import EmbeddedEngine, load  # noqa: PLC0415
    from ecom_report.figures import compute  # noqa: PLC0415
    from ecom_shared.cassandra.session import cassandra_session  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="ecom-bench-report-") as directory:
        engine = EmbeddedEngine(Path(directory))
        try:
            async with cassandra_session(settings) as session:
                began = time.monotonic()
                counts = await load(session, settings, engine)
                loaded = time.monotonic()
            figures = await asyncio.to_thread(compute, engine, as_of)
            done = time.monotonic()
        finally:
            engine.close()
    return {
        "rows": counts.orders + counts.parked,
        "scan_seconds": loaded - began,
        "total_seconds": done - began,
        "figures": figures.as_json(),
    }


def _spark(settings: CassandraSettings, as_of: datetime, jars: list[Path]) -> dict[str, Any]:
    from pyspark import SparkContext  # noqa: PLC0415 - optional: the [spark] extra

    from ecom_report.spark import figures  # noqa: PLC0415

    began = time.monotonic()
    result = figures(settings, as_of, spark_jars=jars)
    seconds = time.monotonic() - began
    # The JVM that PySpark started outlives the session until this process exits.
    gateway: Any = SparkContext._gateway  # the one handle on the JVM's process
    jvm_pid = getattr(getattr(gateway, "proc", None), "pid", None)
    return {
        "rows": result.orders + result.payments_parked,
        "scan_seconds": None,
        "total_seconds": seconds,
        "jvm_peak_rss_bytes": peak_rss_bytes(jvm_pid) if jvm_pid else None,
        "figures": result.as_json(),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ecom_devtools.bench.report_probe")
    parser.add_argument("mode", choices=("bare", "embedded", "spark"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keyspace", required=True)
    parser.add_argument("--orders-table", required=True)
    parser.add_argument("--dlq-table", required=True)
    parser.add_argument("--plan", type=ScanPlan.of_arg, help="bare: the scan (JSON)")
    parser.add_argument("--as-of", type=datetime.fromisoformat, help="engines: ages up to this")
    parser.add_argument("--jar", type=Path, action="append", default=[], help="spark: a jar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(LogSettings(level="WARNING", json_output=False), service="bench-report")
    settings = CassandraSettings(
        port=args.port,
        keyspace=args.keyspace,
        orders_table=args.orders_table,
        dlq_table=args.dlq_table,
    )
    if args.mode == "bare":
        measured = asyncio.run(_bare(settings, args.plan))
    elif args.mode == "embedded":
        measured = asyncio.run(_embedded(settings, args.as_of))
    else:
        measured = _spark(settings, args.as_of, args.jar)
    measured["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(measured), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
