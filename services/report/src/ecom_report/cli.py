"""``ecom-report``: write the report (``--out DIR``), or serve it live (``serve``).

Cassandra is reached with the same ``ECOM_CASSANDRA__*`` settings as the services. Exit codes:
0 done, 1 the figures could not be computed (the error is printed), 2 bad arguments or
settings.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Final

from ecom_report.build import EngineChoice, build, write
from ecom_report.serve import LiveReport, serve
from ecom_shared.error_text import describe_error
from ecom_shared.observability.logs import configure_logging
from ecom_shared.runtime.service import load_settings, run_async
from ecom_shared.settings import StoreServiceSettings

EXIT_FAILED: Final = 1
DEFAULT_REFRESH: Final = 60.0


def _engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=("embedded", "spark"),
        default="embedded",
        help="embedded: DuckDB in this process (default); spark: Spark SQL through the "
        "Spark Cassandra Connector (needs the [spark] extra and a JDK 17)",
    )
    parser.add_argument(
        "--master",
        default=None,
        help="Spark master URL for --engine spark (default: local[*], all cores here)",
    )
    parser.add_argument(
        "--spark-jars",
        type=Path,
        default=None,
        metavar="DIR",
        help="a folder of the Spark Cassandra Connector's jars (default: Spark fetches "
        "the connector by its Maven coordinates)",
    )
    parser.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another Spark setting, e.g. the connector's TLS trust store (repeatable)",
    )


def _engine(parser: argparse.ArgumentParser, args: argparse.Namespace) -> EngineChoice:
    pairs = []
    for item in args.spark_conf:
        key, equals, value = item.partition("=")
        if not equals or not key:
            parser.error(f"--spark-conf takes KEY=VALUE, not {item!r}")
        pairs.append((key, value))
    jars: tuple[Path, ...] = ()
    if args.spark_jars is not None:
        jars = tuple(sorted(args.spark_jars.glob("*.jar")))
        if not jars:
            parser.error(f"--spark-jars: no .jar file in {args.spark_jars}")
    return EngineChoice(args.engine, args.master, jars, tuple(pairs))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecom-report",
        description="The store analysis: figures and charts from the orders table and the DLQ.",
        epilog="ecom-report serve --help: the live page.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for report.html/json")
    parser.add_argument(
        "--as-of",
        type=datetime.fromisoformat,
        default=None,
        help="ISO 8601 instant that ages are counted to (default: now)",
    )
    _engine_options(parser)
    return parser


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecom-report serve", description="Serve the report as a live page."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: ECOM_HTTP__PORT, else 8000)"
    )
    parser.add_argument(
        "--refresh",
        type=float,
        default=DEFAULT_REFRESH,
        help=f"compute the figures at most this often, in seconds (default {DEFAULT_REFRESH:g})",
    )
    _engine_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["serve"]:
        return _serve(args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.as_of is not None and args.as_of.tzinfo is None:
        parser.error("--as-of needs an offset, e.g. 2026-12-07T10:00:00Z")
    engine = _engine(parser, args)
    settings = load_settings(StoreServiceSettings)
    configure_logging(settings.log, service="report")

    async def run(_: asyncio.Event) -> int:
        try:
            built = await build(settings.cassandra, engine=engine, as_of=args.as_of)
        except Exception as exc:  # noqa: BLE001 - any failure is reported, with its cause
            sys.stderr.write(
                f"ecom-report: the figures could not be computed: {describe_error(exc)}\n"
            )
            return EXIT_FAILED
        html, data = write(built, args.out)
        sys.stdout.write(f"{html}\n{data}\n")
        return 0

    return run_async(run)


def _serve(args_list: list[str]) -> int:
    parser = _serve_parser()
    args = parser.parse_args(args_list)
    if args.refresh <= 0:
        parser.error("--refresh must be positive")
    engine = _engine(parser, args)
    settings = load_settings(StoreServiceSettings)
    configure_logging(settings.log, service="report")
    port = settings.http.port if args.port is None else args.port
    live = LiveReport(
        lambda: build(settings.cassandra, engine=engine),
        args.refresh,
    )
    return run_async(lambda stop: serve(live, args.host, port, stop))


if __name__ == "__main__":
    sys.exit(main())
