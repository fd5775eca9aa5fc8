"""The page: self-contained (nothing to fetch), every chart drawn or said to be empty, text
escaped, money shown to the cent while the JSON keeps it exact."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ecom_report.charts import nice_ticks, short_number
from ecom_report.embedded import ORDERS, PARKED, EmbeddedEngine
from ecom_report.figures import Figures, compute
from ecom_report.page import cents, render
from tests.unit.report.test_figures import order

AS_OF = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CHARTS = (
    "revenue-per-day", "orders-per-day", "share-paid", "revenue-by-item", "orders-by-status",
    "method-orders", "method-revenue", "payment-source", "payment-wait", "dlq-now",
)  # fmt: skip


def figures_of(tmp_path: Path, orders: list[tuple[object, ...]], parked: int = 0) -> Figures:
    engine = EmbeddedEngine(tmp_path)
    try:
        if orders:
            engine.append(ORDERS, orders)
        as_of_ms = int(AS_OF.timestamp() * 1000)
        rows = [(9, 90 + i, "PayPal", "Completed", as_of_ms - 1000 * i, 1) for i in range(parked)]
        if rows:
            engine.append(PARKED, rows)
        return compute(engine, AS_OF)
    finally:
        engine.close()


def page(figures: Figures) -> str:
    return render(figures, source="ks.orders and dlq", engine="embedded", seconds=0.5)


def drawn(html: str) -> dict[str, int]:
    """Marks drawn per chart (figure id), -1 for a chart that says it has no data."""
    result = {}
    for key, body in re.findall(r'<figure class="[^"]*" id="([^"]+)">(.*?)</figure>', html):
        result[key] = body.count('class="mark"') if "<svg" in body else -1
    return result


def test_every_chart_is_drawn_from_a_full_store(tmp_path: Path) -> None:
    rows = [
        order(i, f"{i}.25", 2, item=f"item {i % 3}", created_on=date(2026, 11, 20 + i % 3),
              payment=("PayPal", "Completed", 5000, "stream") if i % 2 else None)
        for i in range(1, 11)
    ]  # fmt: skip
    html = page(figures_of(tmp_path, rows, parked=3))
    marks = drawn(html)
    assert set(marks) == set(CHARTS)
    assert all(n > 0 for n in marks.values()), marks
    assert marks["revenue-per-day"] == 3  # one bar a day
    assert marks["orders-per-day"] == 6  # two bars a day
    assert marks["dlq-now"] == 5  # a bar per age bucket, zero ones at the baseline
    assert "<title>parked, &lt; 1 min: 3</title>" in html  # all three under a minute ago


def test_an_empty_store_gives_a_clear_page(tmp_path: Path) -> None:
    html = page(figures_of(tmp_path, []))
    assert set(drawn(html).values()) == {-1}
    assert "No data yet." in html
    assert "No payment is waiting for its order." in html
    assert "no orders yet" in html


def test_a_single_order_draws(tmp_path: Path) -> None:
    html = page(figures_of(tmp_path, [order(1, "3", payment=("PayPal", "Failed", 1, "dlq"))]))
    marks = drawn(html)
    assert marks["revenue-per-day"] == 1
    assert marks["payment-source"] == 1


def test_the_page_asks_for_nothing_and_escapes_what_the_apps_sent(tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script>'
    html = page(figures_of(tmp_path, [order(1, "1", item=hostile, status=hostile)]))
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    urls = set(re.findall(r'(?:src|href)="([^"]*)"', html))
    assert urls <= {"data:,"}
    assert "default-src 'none'" in html  # and the browser is told to refuse any request
    assert "http://www.w3.org/2000/svg" in html  # the SVG namespace is a name, not a request


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("1234.5", "1,234.50"),
        ("0.005", "0.00"),
        ("0.015", "0.02"),
        ("100000000000000059.470000000000000003", "100,000,000,000,000,059.47"),
    ],
)
def test_money_is_shown_to_the_cent(value: str, shown: str) -> None:
    assert cents(value) == shown


def test_axis_ticks_are_round_and_cover_the_top() -> None:
    assert nice_ticks(7.3) == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert nice_ticks(100)[-1] >= 100
    assert nice_ticks(0) == [0.0, 1.0]
    assert short_number(1_500_000) == "1.5M"


def test_a_long_history_is_drawn_as_lines(tmp_path: Path) -> None:
    day_ms = 86_400_000
    rows = [order(i, "1", created_on=None, created_ms=i * day_ms) for i in range(1, 41)]
    html = page(figures_of(tmp_path, rows))
    assert html.count("<polyline") == 4  # revenue, orders and paid, share paid
    assert drawn(html)["orders-per-day"] == 80  # a dot a day and series
