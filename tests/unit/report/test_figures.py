"""The figures' SQL on the embedded engine (DuckDB, in process) over rows made here, checked
against sums worked out by hand: exact money, grouping as stored, buckets, empty tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from ecom_report.embedded import ORDERS, PARKED, EmbeddedEngine
from ecom_report.figures import MISSING, compute, money

AS_OF = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY_MS = 86_400_000
NOV_30_MS = int(datetime(2026, 11, 30, tzinfo=UTC).timestamp() * 1000)


def order(
    order_id: int,
    price: str,
    quantity: int = 1,
    *,
    item: str = "Mug",
    status: str | None = "Shipped",
    created_ms: int = NOV_30_MS,
    created_on: date | None = date(2026, 11, 30),
    payment: tuple[str, str, int, str] | None = None,
) -> tuple[Any, ...]:
    """A scanned row (raw values, in the columns' order); ``payment``: method, status, paid
    this many ms after creation, source."""
    method, pay_status, after, source = payment or (None, None, None, None)
    return (
        order_id, 7, item, quantity, price, status, created_ms, created_on,
        None if payment is None else order_id + 1000, method, pay_status,
        None if after is None else created_ms + after, source,
    )  # fmt: skip


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[EmbeddedEngine]:
    engine = EmbeddedEngine(tmp_path)
    yield engine
    engine.close()


def test_empty_tables_give_zero_figures_not_an_error(engine: EmbeddedEngine) -> None:
    figures = compute(engine, AS_OF)
    assert (figures.orders, figures.orders_paid, figures.revenue_paid) == (0, 0, "0")
    assert figures.by_day == []
    assert figures.by_item == {}
    assert figures.by_payment_method == {}
    assert figures.first_day is None
    assert figures.oldest_parked_age_seconds is None
    assert figures.payments_parked == 0
    assert [b.count for b in figures.payment_wait] == [0] * len(figures.payment_wait)
    assert figures.as_of == "2026-12-07T12:00:00.000Z"


def test_money_is_exact_and_only_completed_payments_are_revenue(engine: EmbeddedEngine) -> None:
    tiny = "0.000000000000000001"  # 18 places: a float sum would lose it
    engine.append(
        ORDERS,
        [
            order(1, "19.99", 3, payment=("Credit Card", "Completed", 5_000, "stream")),
            order(2, tiny, 3, payment=("Credit Card", "Completed", 500, "dlq")),
            order(3, "99999999999999999.5", 1, payment=("PayPal", "Completed", -1, "order")),
            order(4, "10", 2, payment=("PayPal", "Failed", 90_000, "stream")),
            order(5, "1E+2", 1),  # Cassandra's text for 100 held as unscaled 1, scale -2
        ],
    )
    f = compute(engine, AS_OF)
    assert f.revenue_paid == "100000000000000059.470000000000000003"
    assert f.order_value == "100000000000000179.470000000000000003"
    assert (f.orders, f.orders_paid, f.units) == (5, 4, 10)
    assert f.by_payment_method["Credit Card"].revenue == "59.970000000000000003"
    assert f.by_payment_method["PayPal"].orders == 2
    assert f.by_payment_method["PayPal"].revenue == "99999999999999999.5"
    assert f.by_payment_status == {"Completed": 3, "Failed": 1}
    assert f.by_payment_source == {"dlq": 1, "order": 1, "stream": 2}
    waits = {b.label: b.count for b in f.payment_wait}
    assert (waits["before order"], waits["< 1 s"], waits["1-10 s"], waits["1-10 min"]) == (
        1, 1, 1, 1
    )  # fmt: skip


def test_values_are_grouped_as_stored(engine: EmbeddedEngine) -> None:
    engine.append(
        ORDERS,
        [
            order(1, "1", item="Café Crème", status="Shipped"),
            order(2, "1", item="café crème", status="shipped"),
            order(3, "1", item="Café Crème", status=None),
        ],
    )
    f = compute(engine, AS_OF)
    assert f.by_order_status == {"Shipped": 1, "shipped": 1, MISSING: 1}
    assert set(f.by_item) == {"Café Crème", "café crème"}
    assert f.by_item["Café Crème"].orders == 2


def test_days_come_from_the_date_as_sent_else_the_utc_day(engine: EmbeddedEngine) -> None:
    engine.append(
        ORDERS,
        [
            order(1, "2", created_on=date(2026, 12, 1)),  # sent as +02:00, 23:30 UTC before
            order(2, "3", created_on=None, created_ms=NOV_30_MS + DAY_MS + 5),
            order(3, "4", payment=("PayPal", "Completed", 1, "stream")),
        ],
    )
    f = compute(engine, AS_OF)
    assert [(d.day, d.orders, d.orders_paid, d.revenue_paid) for d in f.by_day] == [
        ("2026-11-30", 1, 1, "4"),
        ("2026-12-01", 2, 0, "0"),
    ]
    assert (f.first_day, f.last_day) == ("2026-11-30", "2026-12-01")


def test_parked_payments_and_their_ages(engine: EmbeddedEngine) -> None:
    as_of_ms = int(AS_OF.timestamp() * 1000)
    engine.append(
        PARKED,
        [
            (1, 11, "PayPal", "Completed", as_of_ms - 30_000, 1),
            (1, 12, "PayPal", "Completed", as_of_ms - 7_200_000, 3),
            (2, 21, "Credit Card", "Completed", as_of_ms - 2 * DAY_MS, 9),
        ],
    )
    f = compute(engine, AS_OF)
    assert (f.payments_parked, f.parked_orders) == (3, 2)
    assert f.oldest_parked_age_seconds == 2 * 86_400
    assert {b.label: b.count for b in f.parked_age} == {
        "< 1 min": 1, "1-10 min": 0, "10-60 min": 0, "1-24 h": 1, ">= 1 day": 1
    }  # fmt: skip


def test_a_row_scanned_twice_counts_once(engine: EmbeddedEngine) -> None:
    row = order(1, "5", payment=("PayPal", "Completed", 1, "stream"))
    engine.append(ORDERS, [row, order(2, "1")])
    engine.append(ORDERS, [row])
    assert engine.deduplicate(ORDERS) == 1
    assert engine.deduplicate(ORDERS) == 0
    f = compute(engine, AS_OF)
    assert (f.orders, f.revenue_paid) == (2, "5")


def test_a_total_that_does_not_fit_is_an_error_not_a_wrong_figure(
    engine: EmbeddedEngine,
) -> None:
    big = "99999999999999999999.5"  # the largest integer part DECIMAL(38, 18) holds
    engine.append(ORDERS, [order(1, big, 3, payment=("PayPal", "Completed", 1, "stream"))])
    with pytest.raises(Exception, match=r"[Oo]verflow"):
        compute(engine, AS_OF)


@pytest.mark.parametrize(
    ("value", "text"),
    [("1.500000000000000000", "1.5"), ("100", "100"), ("0E-18", "0"), ("1E+2", "100")],
)
def test_money_text_has_no_trailing_zeros(value: str, text: str) -> None:
    from decimal import Decimal  # noqa: PLC0415

    assert money(Decimal(value)) == text
    assert money(None) == "0"
