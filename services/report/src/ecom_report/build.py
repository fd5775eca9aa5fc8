"""Compute the figures on the chosen engine, and write ``report.html`` and ``report.json``."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

from ecom_report.embedded import EmbeddedEngine, load
from ecom_report.figures import Figures, compute
from ecom_report.page import render
from ecom_shared.cassandra.session import cassandra_session
from ecom_shared.clock import utc_now
from ecom_shared.observability.logs import get_logger
from ecom_shared.settings import CassandraSettings

log = get_logger(__name__)

EngineName = Literal["embedded", "spark"]


class EngineChoice(NamedTuple):
    """Which engine computes the figures, and for Spark where and with which jars."""

    name: EngineName = "embedded"
    master: str | None = None
    """Spark's master URL (``local[*]`` when ``None``)."""
    spark_jars: tuple[Path, ...] = ()
    """The connector's jars; none: Spark fetches them by coordinates."""
    spark_conf: tuple[tuple[str, str], ...] = ()
    """More Spark settings, last (trust stores and the like)."""


EMBEDDED: Final = EngineChoice()


class Built(NamedTuple):
    figures: Figures
    engine: EngineName
    seconds: float
    source: str
    """The tables read, for the page's footer."""

    def as_json(self) -> dict[str, Any]:
        """``report.json``: the figures, then how they were made (``engine``, ``seconds``)."""
        return {**self.figures.as_json(), "engine": self.engine, "seconds": round(self.seconds, 3)}

    def page(self, *, refresh_seconds: float | None = None) -> str:
        return render(
            self.figures,
            source=self.source,
            engine=self.engine,
            seconds=self.seconds,
            refresh_seconds=refresh_seconds,
        )


async def build(
    settings: CassandraSettings,
    *,
    engine: EngineChoice = EMBEDDED,
    as_of: datetime | None = None,
    scratch: Path | None = None,
) -> Built:
    """The figures of the tables as they are now (ages counted up to ``as_of``: now by
    default). The embedded engine's scratch database lives in a temporary folder under
    ``scratch`` (the system's by default) and is gone when this returns."""
    moment = as_of or utc_now()
    began = time.monotonic()
    if engine.name == "spark":
        from ecom_report import spark  # noqa: PLC0415 - PySpark is an optional dependency

        figures = await asyncio.to_thread(
            spark.figures,
            settings,
            moment,
            master=engine.master,
            spark_jars=engine.spark_jars,
            extra_conf=dict(engine.spark_conf),
        )
    else:
        figures = await _embedded(settings, moment, scratch)
    seconds = time.monotonic() - began
    source = f"{settings.keyspace}.{settings.orders_table} and {settings.dlq_table}"
    log.info("report.built", engine=engine.name, orders=figures.orders, seconds=round(seconds, 2))
    return Built(figures, engine.name, seconds, source)


async def _embedded(settings: CassandraSettings, as_of: datetime, scratch: Path | None) -> Figures:
    with tempfile.TemporaryDirectory(prefix="ecom-report-", dir=scratch) as directory:
        engine = EmbeddedEngine(Path(directory))
        try:
            async with cassandra_session(settings) as session:
                await load(session, settings, engine)
            return await asyncio.to_thread(compute, engine, as_of)
        finally:
            engine.close()


def write(built: Built, out: Path) -> tuple[Path, Path]:
    """``report.html`` and ``report.json`` in ``out`` (created), each replaced whole: a reader
    never sees half a file."""
    out.mkdir(parents=True, exist_ok=True)
    html = _replace(out / "report.html", built.page())
    data = _replace(out / "report.json", json.dumps(built.as_json(), indent=2) + "\n")
    return html, data


def _replace(path: Path, text: str) -> Path:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path
