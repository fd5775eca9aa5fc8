"""``report.html``: one self-contained page for a store manager, totals first, then charts.

Nothing on the page is fetched: styles are inline, charts are inline SVG, fonts are the
reader's own, there is no script, and the page's Content-Security-Policy forbids any request
should a later change try one. Money is shown rounded to cents for reading; ``report.json``
keeps the exact figures.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from html import escape
from typing import Any, Final, NamedTuple

from ecom_report import charts
from ecom_report.charts import Point
from ecom_report.figures import Figures

DAYS_AS_COLUMNS: Final = 35
"""Up to this many days, per-day figures are drawn as bars; beyond, as lines."""
TOP_ITEMS: Final = 15
"""Items drawn in the revenue chart; the others are counted under it."""

SOURCES: Final = {
    "stream": "stream (payment consumer)",
    "order": "order (order consumer)",
    "dlq": "dlq (DLQ worker)",
}
"""What each ``payment_source`` means, for the reader."""

_STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
background:#f5f6f8;color:#1d2430}
header{background:#1d2430;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c5ccd6;font-size:13px}
main{padding:20px 28px;max-width:1400px}
.tiles{display:grid;gap:12px;grid-template-columns:repeat(auto-fill,minmax(210px,1fr))}
.tile{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002}
.tile .n{font-size:21px;font-weight:600;overflow-wrap:anywhere}
.tile .l{font-size:12px;color:#5b6573}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px;
margin-top:20px}
figure{background:#fff;border-radius:8px;margin:0;padding:12px 16px;box-shadow:0 1px 2px #0002}
figcaption h2{font-size:16px;margin:0}figcaption p{font-size:12px;color:#5b6573;margin:2px 0 8px}
svg.plot{width:100%;height:auto;font-size:11px}svg .grid{stroke:#e3e6ea}
svg .tick,svg .axis{fill:#5b6573}svg .value{fill:#1d2430}
p.empty{color:#5b6573;font-style:italic;padding:40px 0;text-align:center}
footer{font-size:12px;color:#5b6573;padding:0 28px 24px}
"""
_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


class Chart(NamedTuple):
    key: str
    title: str
    note: str
    svg: str | None
    """``None``: nothing to draw yet (the page says so)."""
    empty: str = "No data yet."


def cents(value: str) -> str:
    """A decimal string for reading: grouped, two places (the exact value is in the JSON)."""
    rounded = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return f"{rounded:,.2f}"


def count(value: int) -> str:
    return f"{value:,}"


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds} s"


def share(part: int, whole: int) -> str:
    return "-" if whole == 0 else f"{100 * part / whole:.1f} %"


def render(
    figures: Figures,
    *,
    source: str,
    engine: str,
    seconds: float,
    refresh_seconds: float | None = None,
) -> str:
    """The page. ``refresh_seconds``: the served page reloads itself that often."""
    refresh = (
        f'<meta http-equiv="refresh" content="{max(1, round(refresh_seconds))}">'
        if refresh_seconds
        else ""
    )
    tiles = "".join(
        f'<div class="tile"><div class="n">{escape(n)}</div><div class="l">{escape(label)}</div>'
        "</div>"
        for n, label in _tiles(figures)
    )
    figures_html = "".join(_figure(chart) for chart in _charts(figures))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"{refresh}<title>Store report</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>Store report</h1><p>As of {escape(figures.as_of)} \u00b7 "
        f"orders created {escape(_period(figures))}</p></header>"
        f'<main><section class="tiles">{tiles}</section>'
        f'<section class="charts">{figures_html}</section></main>'
        f"<footer>Read from {escape(source)} by the {escape(engine)} engine in "
        f"{seconds:.1f} s. Revenue counts orders whose payment status is Completed. "
        "Exact figures: report.json.</footer></body></html>"
    )


def _period(figures: Figures) -> str:
    if figures.first_day is None:
        return "- (no orders yet)"
    if figures.first_day == figures.last_day:
        return f"on {figures.first_day}"
    return f"from {figures.first_day} to {figures.last_day}"


def _tiles(f: Figures) -> list[tuple[str, str]]:
    return [
        (count(f.orders), "orders"),
        (f"{count(f.orders_paid)} ({share(f.orders_paid, f.orders)})", "orders paid"),
        (cents(f.revenue_paid), "revenue (completed payments)"),
        (cents(f.order_value), "value of all orders"),
        (count(f.customers), "customers"),
        (count(f.units), "units ordered"),
        (count(f.payments_parked), "payments waiting in the DLQ"),
        (duration(f.oldest_parked_age_seconds), "oldest DLQ wait"),
    ]


def _figure(chart: Chart) -> str:
    body = chart.svg if chart.svg is not None else f'<p class="empty">{escape(chart.empty)}</p>'
    state = "chart" if chart.svg is not None else "chart no-data"
    return (
        f'<figure class="{state}" id="{chart.key}"><figcaption><h2>{escape(chart.title)}</h2>'
        f"<p>{escape(chart.note)}</p></figcaption>{body}</figure>"
    )


def _charts(f: Figures) -> list[Chart]:
    return [*_by_day(f), *_by_category(f), *_waits(f)]


def _by_day(f: Figures) -> list[Chart]:
    days = [d.day for d in f.by_day]
    has = bool(days)
    revenue = [Point(d.day, float(d.revenue_paid), cents(d.revenue_paid)) for d in f.by_day]
    orders = [Point(d.day, d.orders, count(d.orders)) for d in f.by_day]
    paid = [Point(d.day, d.orders_paid, count(d.orders_paid)) for d in f.by_day]
    shares = [
        Point(
            d.day,
            100 * d.orders_paid / d.orders if d.orders else 0.0,
            share(d.orders_paid, d.orders),
        )
        for d in f.by_day
    ]

    def per_day(
        title: str, series: list[tuple[str, list[Point]]], unit: str, **scale: Any
    ) -> str | None:
        if not has:
            return None
        labels, x_title = _day_labels(days)
        if len(days) <= DAYS_AS_COLUMNS:
            return charts.columns(labels, series, title=title, unit=unit, x_title=x_title, **scale)
        return charts.lines(labels, series, title=title, unit=unit, x_title=x_title, **scale)

    percent = {"top_value": 100, "tick_text": lambda v: f"{v:.0f} %"}
    return [
        Chart(
            "revenue-per-day",
            "Revenue per day",
            "Completed payments, by the day the order was created (currency units)",
            per_day("Revenue per day", [("revenue", revenue)], "revenue"),
        ),
        Chart(
            "orders-per-day",
            "Orders per day",
            "Orders created each day, and how many of them have a payment",
            per_day("Orders per day", [("orders", orders), ("paid", paid)], "orders"),
        ),
        Chart(
            "share-paid",
            "Share of orders paid",
            f"Orders with a payment, by creation day; overall {share(f.orders_paid, f.orders)}",
            per_day("Share of orders paid", [("paid", shares)], "% of orders", **percent),
        ),
    ]


def _day_labels(days: list[str]) -> tuple[list[str], str]:
    """Days as axis labels: month and day when they are all of one year, which the axis names."""
    years = {day[:4] for day in days}
    if len(years) == 1 and all(len(day) == len("2026-01-01") for day in days):
        return [day[5:] for day in days], f"day the order was created ({years.pop()})"
    return days, "day the order was created"


def _by_category(f: Figures) -> list[Chart]:
    items = sorted(f.by_item.items(), key=lambda kv: (-Decimal(kv[1].revenue), kv[0]))
    shown = items[:TOP_ITEMS]
    rest = len(items) - len(shown)
    methods = sorted(f.by_payment_method.items(), key=lambda kv: (-kv[1].orders, kv[0]))
    return [
        _bars(
            "revenue-by-item",
            "Revenue by item",
            f"Completed payments (currency units); top {TOP_ITEMS}"
            + (f", {rest} more items not drawn" if rest > 0 else ""),
            [Point(k, float(v.revenue), cents(v.revenue)) for k, v in shown],
            "revenue",
        ),
        _bars(
            "orders-by-status",
            "Orders by status",
            "The order's latest status, as the apps spell it",
            _counted(f.by_order_status),
            "orders",
        ),
        _bars(
            "method-orders",
            "Payment methods: orders",
            "Paid orders by payment method",
            [Point(k, v.orders, count(v.orders)) for k, v in methods],
            "orders",
        ),
        _bars(
            "method-revenue",
            "Payment methods: revenue",
            "Completed payments by payment method (currency units)",
            [Point(k, float(v.revenue), cents(v.revenue)) for k, v in methods],
            "revenue",
        ),
        _bars(
            "payment-source",
            "How payments were joined",
            "payment_source: which part of the pipeline wrote the payment into its order's row "
            "(stream: it found its order; order: its order came after it was parked; dlq: the "
            "DLQ worker joined it)",
            [
                Point(SOURCES.get(k, k), v, count(v))
                for k, v in sorted(f.by_payment_source.items(), key=lambda kv: -kv[1])
            ],
            "payments",
        ),
    ]


def _waits(f: Figures) -> list[Chart]:
    waits = [Point(b.label, b.count, count(b.count)) for b in f.payment_wait]
    ages = [Point(b.label, b.count, count(b.count)) for b in f.parked_age]
    return [
        Chart(
            "payment-wait",
            "How long payments came after their order",
            "Time from the order's creation to its payment (paid_at - creation_date)",
            charts.columns(
                [p.label for p in waits],
                [("payments", waits)],
                title="Payment wait",
                unit="payments",
                x_title="wait",
            )
            if any(p.value for p in waits)
            else None,
            "No paid orders yet.",
        ),
        Chart(
            "dlq-now",
            "The DLQ now",
            f"{count(f.payments_parked)} payments wait for {count(f.parked_orders)} orders; "
            f"oldest {duration(f.oldest_parked_age_seconds)}",
            charts.columns(
                [p.label for p in ages],
                [("parked", ages)],
                title="Parked payments by age",
                unit="payments",
                x_title="age",
            )
            if f.payments_parked
            else None,
            "No payment is waiting for its order.",
        ),
    ]


def _counted(counts: dict[str, int]) -> list[Point]:
    return [
        Point(k, v, count(v)) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _bars(key: str, title: str, note: str, points: list[Point], unit: str) -> Chart:
    svg = charts.bars(points, title=title, unit=unit) if points else None
    return Chart(key, title, note, svg)
