"""The report scenario's pure parts: its bare scan is the embedded engine's own, its rows are
what a real row holds, and its rounds become one ratio and one table (no Cassandra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ecom_devtools.bench.report import table
from ecom_devtools.bench.report_engines import last_json, scan_plan
from ecom_devtools.bench.report_probe import ScanPlan
from ecom_devtools.bench.report_results import (
    ProbeRun,
    ReportBench,
    ScanRound,
    differences,
    median_round,
)
from ecom_devtools.bench.report_rows import (
    PAID_EVERY,
    Statements,
    order_rows,
    parked_values,
    settings,
)
from ecom_devtools.bench.results import Results
from ecom_report import embedded


class _Empty:
    def has_more_pages(self) -> bool:
        return False

    def __iter__(self) -> Any:
        return iter(())


class _Statement:
    def set_is_idempotent(self, _value: bool) -> None: ...
    def set_page_size(self, _size: int) -> None: ...
    def set_page_state(self, _state: bytes) -> None: ...


class _Prepared:
    def bind(self, _values: list[Any]) -> _Statement:
        return _Statement()


class _Session:
    """Records what is prepared; every page is empty."""

    def __init__(self) -> None:
        self.prepared: list[str] = []

    async def create_prepared(self, cql: str) -> _Prepared:
        self.prepared.append(cql)
        return _Prepared()

    async def execute(self, _statement: _Statement) -> _Empty:
        return _Empty()


async def test_the_bare_scan_selects_what_the_embedded_engine_selects(tmp_path: Path) -> None:
    config = settings(29742)
    session = _Session()
    engine = embedded.EmbeddedEngine(tmp_path)
    try:
        await embedded.load(session, config, engine)
    finally:
        engine.close()
    plan = scan_plan(config)
    assert list(plan.selects) == session.prepared
    assert (plan.page_size, plan.segments, plan.readers, plan.attempts) == (
        embedded.PAGE_SIZE,
        embedded.SEGMENTS,
        embedded.READERS,
        embedded.PAGE_ATTEMPTS,
    )
    assert ScanPlan.of_arg(plan.as_arg()) == plan


def test_unpaid_orders_name_no_payment_column() -> None:
    texts = Statements.of(settings(1))
    assert "payment_id" not in texts.order
    assert "payment_id" in texts.paid_order
    rows = order_rows(0, 100, 100)
    assert sum(1 for has_payment, _ in rows if not has_payment) == 100 // PAID_EVERY
    for has_payment, values in rows:
        expected = texts.paid_order if has_payment else texts.order
        assert len(values) == expected.count("?")
        assert None not in values  # a bound null would be a tombstone
    assert None not in parked_values(1, 100)
    assert texts.parked.count("?") == len(parked_values(1, 100))


def test_rows_cover_a_month_with_cents() -> None:
    rows = [values for _, values in order_rows(0, 3000, 3000)]
    days = {values[8] for values in rows}
    assert len(days) == 30
    assert len({values[2] for values in rows}) > 5  # items
    assert order_rows(5, 6, 3000) == order_rows(5, 6, 3000)  # fixed by index: reusable


def _run(engine: str, rows_per_s: float, *, rss: int = 100 * 2**20) -> ProbeRun:
    return ProbeRun(engine, 1000, round(1000 / rows_per_s, 6), 2 * 1000 / rows_per_s, rss)


def _round(number: int, bare: float, engine: float) -> ScanRound:
    return ScanRound(number, _run("bare", bare), _run("embedded", engine))


def test_a_round_sets_the_engine_against_its_own_bare_scan() -> None:
    assert _round(1, 1000.0, 850.0).ratio == 0.85
    # ratios 0.9, 0.5, 0.7: the median is round 3's (whose rates are neither median)
    rounds = [_round(1, 1000.0, 900.0), _round(2, 2000.0, 1000.0), _round(3, 500.0, 350.0)]
    assert median_round(rounds).number == 3
    assert median_round(rounds[:2]).number == 2  # even count: the lower middle
    with pytest.raises(ValueError, match="no round"):
        median_round([])


def test_a_probe_line_becomes_a_run() -> None:
    text = 'warning: page retried\n{"rows": 10, "scan_seconds": 2.0, "total_seconds": 3.0}\n'
    run = ProbeRun.of("bare", last_json(text) | {"peak_rss_bytes": 5})
    assert (run.rows_per_s, run.peak_rss_bytes, run.jvm_peak_rss_bytes) == (5.0, 5, None)
    spark = ProbeRun.of("spark", {"rows": 10, "scan_seconds": None, "total_seconds": 4.0})
    assert spark.rows_per_s == 2.5  # no separate scan time: the whole run
    assert last_json("no json\n{broken\n") == {}


def test_differences_name_the_figures_that_differ() -> None:
    assert differences({"a": 1, "b": [1]}, {"a": 1, "b": [1]}) == []
    assert differences({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 0}) == ["b", "c"]


def _section(spark: ProbeRun | None, differ: list[str] | None) -> ReportBench:
    return ReportBench(
        orders=1000,
        parked=1,
        reused=True,
        fill_seconds=None,
        rounds=[_round(1, 1000.0, 700.0), _round(2, 1200.0, 1080.0)],
        spark=spark,
        spark_error=None if spark else "no JDK",
        figures_differ=differ,
    )


def _cells(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in text.splitlines()]


def test_the_section_and_its_rows() -> None:
    spark = ProbeRun("spark", 1000, None, 10.0, 300 * 2**20, 900 * 2**20)
    section = _section(spark, [])
    data = section.as_json()
    assert (data["ratio"], data["median_round"], data["best_ratio"]) == (0.7, 1, 0.9)
    assert data["figures_equal"] is True
    results = Results()
    results.record("report", section)
    text = table(results)
    assert "table reused" in text
    assert "1,200 rows/s" in text  # the best bare scan
    assert "70 %, 90 %" in text  # each round's ratio
    assert "JVM peak RSS 900 MiB" in text
    assert ["… figures, embedded against Spark", "equal", "", "", ""] in _cells(text)


def test_a_failed_spark_run_and_differing_figures_show() -> None:
    results = Results()
    results.record("report", _section(None, ["by_day"]))
    text = table(results)
    assert ["… Spark engine: FAILED", "no JDK", "", "", ""] in _cells(text)
    assert "DIFFER: by_day" in text
    assert _section(None, None).as_json()["figures_equal"] is None
