"""The results: one table for people, one JSON file for tools (and the smoke test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ecom_devtools.bench.context import Section
from ecom_shared.error_text import clip

Row = tuple[str, str, str, str, str]  # what, figure, reference, ratio, target

TARGETS = {"order_ratio": 0.85, "payment_ratio": 0.80, "p99_half_ms": 100.0}
RSS_LIMIT_BYTES = 150 * 2**20


def _n(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 10:  # noqa: PLR2004 - small values keep decimals
        return f"{value:.2f}{unit}"
    return f"{value:,.0f}{unit}"


def _r(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _cpu_row(who: str, d: Section) -> Row:
    """CPU per message against the ceiling's: steadier than rates on a shared machine."""
    return (f"  … {who} CPU per message", _n(d.get("consumer_cpu_us_per_message"), " µs"),
            f"ceiling {_n(d.get('ceiling_cpu_us_per_message'), ' µs')}", _r(d.get("cpu_ratio")),
            "")  # fmt: skip


def _product_rows(label: str, who: str, d: Section, target: str) -> Iterator[Row]:
    """The median round of a product drain, then every round's ratio and the CPU row."""
    rounds = d.get("rounds", [])
    yield (f"{label} (median of {len(rounds)} rounds)", f"{_n(d['rate'])}/s",
           f"its round's ceiling {_n(d['ceiling'])}/s", _r(d["ratio"]), target)  # fmt: skip
    if len(rounds) > 1:
        each = ", ".join(_r(r["ratio"]) for r in rounds)
        rates = ", ".join(f"{_n(r['rate'])}/{_n(r['ceiling'])}" for r in rounds)
        yield ("  … each round: ratio", each, f"rows/s: {rates}", "", "")
    yield _cpu_row(who, d)


def _drain_rows(results: Section) -> Iterator[Row]:
    for kind in ("orders", "payments"):
        c = results.get("ceilings", {}).get(kind)
        if c:
            samples = ", ".join(_n(s["rate"]) for s in c["samples"])
            yield (f"ceiling: minimal {kind} consumer (best)", f"{_n(c['rate'])}/s",
                   f"rounds: {samples}", "100 %", "")  # fmt: skip
    if d := results.get("order_drain"):
        yield from _product_rows("order consumer drain", "order consumer", d, "≥ 85 %")
    if p := results.get("payment_drain"):
        for key, label, target in (
            ("orders_present", "payment consumer drain, orders present", "≥ 80 %"),
            ("orders_missing", "payment consumer drain, all parked", ""),
        ):
            yield from _product_rows(label, "payment consumer", p[key], target)


def _dlq_rows(results: Section) -> Iterator[Row]:
    if d := results.get("dlq_pass"):
        yield (f"DLQ worker pass, {d['parked']:,} parked", f"{_n(d['rate'])} rows/s",
               f"payment ceiling {_n(d['ceiling'])}/s", _r(d["ratio"]), "")  # fmt: skip
    if t := results.get("tombstones"):
        outcome = "FAILED" if t["exit_code"] else f"{t['cassandra_warnings']} warnings"
        yield (f"DLQ pass after {t['deletes']:,} deletes ({outcome})", _n(t["seconds"], " s"),
               f"clean pass {_n(t['clean_pass_seconds'], ' s')}", _r(t["ratio"]), "")  # fmt: skip
        if one := t.get("one_range"):
            how = "FAILED" if one["exit_code"] else f"{one['range_splits']} range splits"
            clean = f"clean pass {_n(t['clean_pass_seconds'], ' s')}"
            yield (f"  … read as one token range ({how})", _n(one["seconds"], " s"), clean,
                   _r(one["ratio"]), "")  # fmt: skip


def _e2e_rows(results: Section) -> Iterator[Row]:
    e = results.get("e2e")
    if not e:
        return
    ceiling = results.get("ceilings", {}).get("orders", {}).get("rate", 0.0)
    if s := e.get("saturation"):
        orders = s["sustained_orders_per_s"]
        share = orders / ceiling if ceiling else None
        yield ("end to end, unpaced: sustained", f"{_n(orders)} orders/s",
               f"order ceiling {_n(ceiling)}/s", _r(share), "")  # fmt: skip
    for label in ("half", "full"):
        run = e[label]
        lat = run["latency"]
        target = TARGETS["p99_half_ms"]
        yield (f"end to end at {label} rate ({_n(run['requested_rate'])} msg/s)",
               f"p50 {_n(lat['p50_ms'], ' ms')}, p99 {_n(lat['p99_ms'], ' ms')}, "
               f"max {_n(lat['max_ms'], ' ms')}", f"target p99 {target:.0f} ms",
               _r(lat["p99_ms"] / target), "≤ 100 %" if label == "half" else "")  # fmt: skip
        for path, how in _PATHS.items():
            part = run["latency_by_path"].get(path, {})
            if part.get("count"):
                yield (f"  … {how} ({part['count']:,} rows)",
                       f"p50 {_n(part['p50_ms'], ' ms')}, p99 {_n(part['p99_ms'], ' ms')}",
                       f"target p99 {target:.0f} ms", _r(part["p99_ms"] / target), "")  # fmt: skip


_PATHS = {
    "stream": "joined on the stream",
    "order": "parked, joined as the order came",
    "dlq": "joined by the DLQ worker",
}


def _other_rows(results: Section) -> Iterator[Row]:
    for name, error in results.get("failures", {}).items():
        yield (f"FAILED: {name}", clip(error, 70), "", "", "")
    for name, m in results.get("memory", {}).get("services", {}).items():
        yield (f"peak RSS {name} at full rate", _n(m["peak_rss_bytes"] / 2**20, " MiB"),
               "limit 150 MiB", _r(m["ratio"]), "≤ 100 %")  # fmt: skip
    for kind, s in results.get("scale_out", {}).items():
        one, two = s["one"], s["two"]
        yield (f"scale-out {kind}: 1 → 2 processes", f"{_n(one['rate'])} → {_n(two['rate'])}/s",
               f"ceiling {_n(two['ceiling'])}/s", f"{_r(one['ratio'])} → {_r(two['ratio'])}",
               f"speed-up {s['speedup']}x")  # fmt: skip


def _verifier_rows(results: Section) -> Iterator[Row]:
    v = results.get("verifier")
    if not v:
        return
    for key, label in (("intact", "intact"), ("broken", "11 rows broken")):
        run = v[key]
        found = "exact counts" if key == "broken" and v["counts_exact"] else ""
        yield (f"ecom-verify, {v['orders']:,} orders, {label} (exit {run['exit_code']})",
               f"{_n(run['seconds'], ' s')}, {_n(run['rows_per_s'])} rows/s",
               f"peak RSS {_n(run['peak_rss_bytes'] / 2**20, ' MiB')}", "", found)  # fmt: skip


def table(results: Section) -> str:
    header: Row = ("scenario", "figure", "reference", "ratio", "target")
    rows = [header, *_drain_rows(results), *_dlq_rows(results), *_e2e_rows(results)]
    rows += [*_other_rows(results), *_verifier_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def write_json(path: Path, document: Section) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
