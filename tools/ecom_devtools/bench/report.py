"""The results: one table for people, one JSON file for tools (and the smoke test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ecom_devtools.bench.drain_results import (
    Ceilings,
    PaymentDrain,
    RoundsSummary,
    ScaleOut,
)
from ecom_devtools.bench.report_results import ReportBench
from ecom_devtools.bench.results import Failures, JsonObject, Memory, Results
from ecom_devtools.bench.run_results import DlqPass, EndToEnd, Tombstones, VerifierResult
from ecom_shared.error_text import clip

Row = tuple[str, str, str, str, str]  # what, figure, reference, ratio, target

TARGETS = {"order_ratio": 0.85, "payment_ratio": 0.80, "p99_half_ms": 100.0}
RSS_LIMIT_BYTES = 150 * 2**20


def _n(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 10:  # noqa: PLR2004 - small values keep decimals
        return f"{value:.2f}{unit}"
    return f"{value:,.0f}{unit}"


def _r(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _cpu_row(who: str, d: RoundsSummary) -> Row:
    """CPU per message against the ceiling's: steadier than rates on a shared machine."""
    m = d.median
    return (f"  … {who} CPU per message", _n(m.drain.consumer_cpu_us_per_message, " µs"),
            f"ceiling {_n(m.ceiling_cpu_us_per_message, ' µs')}", _r(m.cpu_ratio),
            "")  # fmt: skip


def _product_rows(label: str, who: str, d: RoundsSummary, target: str) -> Iterator[Row]:
    """The median round of a product drain, then every round's ratio and the CPU row."""
    rounds, m = d.rounds, d.median
    yield (f"{label} (median of {len(rounds)} rounds)", f"{_n(m.rate)}/s",
           f"its round's ceiling {_n(m.ceiling)}/s", _r(m.ratio), target)  # fmt: skip
    if len(rounds) > 1:
        each = ", ".join(_r(r.ratio) for r in rounds)
        rates = ", ".join(f"{_n(r.rate)}/{_n(r.ceiling)}" for r in rounds)
        yield ("  … each round: ratio", each, f"rows/s: {rates}", "", "")
    yield _cpu_row(who, d)


def _drain_rows(results: Results) -> Iterator[Row]:
    ceilings = results.get("ceilings", Ceilings) or Ceilings()
    for kind in ("orders", "payments"):
        c = ceilings.kinds.get(kind)
        if c:
            samples = ", ".join(_n(s.rate) for s in c.samples)
            yield (f"ceiling: minimal {kind} consumer (best)", f"{_n(c.rate)}/s",
                   f"rounds: {samples}", "100 %", "")  # fmt: skip
    if d := results.get("order_drain", RoundsSummary):
        yield from _product_rows("order consumer drain", "order consumer", d, "≥ 85 %")
    if p := results.get("payment_drain", PaymentDrain):
        for summary, label, target in (
            (p.orders_present, "payment consumer drain, orders present", "≥ 80 %"),
            (p.orders_missing, "payment consumer drain, all parked", ""),
        ):
            yield from _product_rows(label, "payment consumer", summary, target)


def _dlq_rows(results: Results) -> Iterator[Row]:
    if d := results.get("dlq_pass", DlqPass):
        yield (f"DLQ worker pass, {d.parked:,} parked", f"{_n(d.rate)} rows/s",
               f"payment ceiling {_n(d.ceiling)}/s", _r(d.ratio), "")  # fmt: skip
    if t := results.get("tombstones", Tombstones):
        outcome = "FAILED" if t.timed.worker.exit_code else f"{t.cassandra_warnings} warnings"
        yield (f"DLQ pass after {t.deletes:,} deletes ({outcome})", _n(t.timed.seconds, " s"),
               f"clean pass {_n(t.clean_pass_seconds, ' s')}", _r(t.timed.ratio),
               "")  # fmt: skip
        one = t.one_range
        how = "FAILED" if one.worker.exit_code else f"{one.worker.range_splits} range splits"
        clean = f"clean pass {_n(t.clean_pass_seconds, ' s')}"
        yield (f"  … read as one token range ({how})", _n(one.seconds, " s"), clean,
               _r(one.ratio), "")  # fmt: skip


def _e2e_rows(results: Results) -> Iterator[Row]:
    e = results.get("e2e", EndToEnd)
    if not e:
        return
    ceiling = (results.get("ceilings", Ceilings) or Ceilings()).rate("orders")
    if s := e.saturation:
        orders = s.figures.sustained_orders_per_s
        share = orders / ceiling if ceiling else None
        yield ("end to end, unpaced: sustained", f"{_n(orders)} orders/s",
               f"order ceiling {_n(ceiling)}/s", _r(share), "")  # fmt: skip
    for label, paced in (("half", e.half), ("full", e.full)):
        run = paced.run
        lat = run.figures.latency
        target = TARGETS["p99_half_ms"]
        yield (f"end to end at {label} rate ({_n(run.requested_rate)} msg/s)",
               f"p50 {_n(lat.p50_ms, ' ms')}, p99 {_n(lat.p99_ms, ' ms')}, "
               f"max {_n(lat.max_ms, ' ms')}", f"target p99 {target:.0f} ms",
               _r(_share(lat.p99_ms, target)), "≤ 100 %" if label == "half" else "")  # fmt: skip
        for path, how in _PATHS.items():
            part = run.figures.latency_by_path.get(path)
            if part and part.count:
                yield (f"  … {how} ({part.count:,} rows)",
                       f"p50 {_n(part.p50_ms, ' ms')}, p99 {_n(part.p99_ms, ' ms')}",
                       f"target p99 {target:.0f} ms", _r(_share(part.p99_ms, target)),
                       "")  # fmt: skip


def _share(value: float | None, target: float) -> float | None:
    return None if value is None else value / target


_PATHS = {
    "stream": "joined on the stream",
    "order": "parked, joined as the order came",
    "dlq": "joined by the DLQ worker",
}


def _other_rows(results: Results) -> Iterator[Row]:
    failures = results.get("failures", Failures) or Failures({})
    for name, error in failures.scenarios.items():
        yield (f"FAILED: {name}", clip(error, 70), "", "", "")
    memory = results.get("memory", Memory)
    for name, m in (memory.services if memory else {}).items():
        yield (f"peak RSS {name} at full rate", _n(m.peak_rss_bytes / 2**20, " MiB"),
               "limit 150 MiB", _r(m.ratio), "≤ 100 %")  # fmt: skip
    scale_out = results.get("scale_out", ScaleOut)
    for kind, s in (scale_out.kinds if scale_out else {}).items():
        one, two = s.one, s.two
        yield (f"scale-out {kind}: 1 → 2 processes",
               f"{_n(one.drain.rate)} → {_n(two.drain.rate)}/s", f"ceiling {_n(two.ceiling)}/s",
               f"{_r(one.ratio)} → {_r(two.ratio)}", f"speed-up {s.speedup}x")  # fmt: skip


def _verifier_rows(results: Results) -> Iterator[Row]:
    v = results.get("verifier", VerifierResult)
    if not v:
        return
    for run, label in ((v.intact, "intact"), (v.broken, "11 rows broken")):
        found = "exact counts" if run is v.broken and v.counts_exact else ""
        yield (f"ecom-verify, {v.orders:,} orders, {label} (exit {run.exit_code})",
               f"{_n(run.seconds, ' s')}, {_n(run.rows_per_s)} rows/s",
               f"peak RSS {_n(run.peak_rss_bytes / 2**20, ' MiB')}", "", found)  # fmt: skip


def _mib(value: int | None) -> str:
    return "not measured" if not value else _n(value / 2**20, " MiB")


def _report_rows(results: Results) -> Iterator[Row]:
    r = results.get("report", ReportBench)
    if not r:
        return
    how = "reused" if r.reused else f"filled in {_n(r.fill_seconds, ' s')}"
    yield (f"report: {r.orders:,} orders + {r.parked:,} parked (table {how})", "", "", "", "")
    bare, m = r.best_bare, r.median
    rounds = ", ".join(_n(x.bare.rows_per_s) for x in r.rounds)
    yield (f"  … bare acsylla scan (best of {len(r.rounds)})", f"{_n(bare.rows_per_s)} rows/s",
           f"peak RSS {_mib(bare.peak_rss_bytes)}; rounds {rounds}", "100 %", "")  # fmt: skip
    e = m.embedded
    yield (f"  … embedded engine scan (median of {len(r.rounds)} rounds)",
           f"{_n(e.rows_per_s)} rows/s", f"its round's bare scan {_n(m.bare.rows_per_s)}/s",
           _r(m.ratio), "≥ 80 %")  # fmt: skip
    if len(r.rounds) > 1:
        each = ", ".join(_r(x.ratio) for x in r.rounds)
        yield ("  … each round: ratio", each, f"best against best {_r(r.best_ratio)}", "", "")
    yield ("  … embedded engine, scan + figures", _n(e.total_seconds, " s"),
           f"peak RSS {_mib(e.peak_rss_bytes)}", "", "")  # fmt: skip
    if r.spark is not None:
        s = r.spark
        yield ("  … Spark engine (local[*]), in all", _n(s.total_seconds, " s"),
               f"JVM peak RSS {_mib(s.jvm_peak_rss_bytes)}, driver {_mib(s.peak_rss_bytes)}",
               f"{_n(s.total_seconds / e.total_seconds)}x embedded" if e.total_seconds else "",
               "")  # fmt: skip
    else:
        yield ("  … Spark engine: FAILED", clip(r.spark_error or "?", 70), "", "", "")
    if r.figures_differ is not None:
        same = "equal" if not r.figures_differ else f"DIFFER: {', '.join(r.figures_differ)}"
        yield ("  … figures, embedded against Spark", same, "", "", "")


def table(results: Results) -> str:
    header: Row = ("scenario", "figure", "reference", "ratio", "target")
    rows = [header, *_drain_rows(results), *_dlq_rows(results), *_e2e_rows(results)]
    rows += [*_other_rows(results), *_verifier_rows(results), *_report_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def write_json(path: Path, document: JsonObject) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
