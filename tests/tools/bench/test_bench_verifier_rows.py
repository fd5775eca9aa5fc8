"""The verifier benchmark's synthetic rows agree with its synthetic manifest (no Cassandra)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ecom_devtools.bench.verifier import _victims, other_last_byte, other_last_digit
from ecom_devtools.bench.verifier_rows import (
    ORPHAN_BASE,
    Shape,
    _chunk,
    make_payment,
    parked_values,
)
from ecom_verifier.checks import ParkedRow, StoredRow, check
from ecom_verifier.manifest import payment_record
from ecom_verifier.manifest_index import ManifestIndex
from ecom_verifier.verify import parked_row, stored_row

ORDER_COLUMNS = (
    "order_id", "customer_id", "item", "quantity", "price_blob", "shipping_address",
    "order_status", "order_created_at", "order_created_on", "payment_id", "payment_method",
    "card_last_four", "payment_status", "paid_at", "payment_source",
)  # fmt: skip
PARKED_COLUMNS = (
    "order_id", "payment_id", "payment_method", "card_last_four", "payment_status", "paid_at",
)  # fmt: skip


@dataclass
class Read:
    """A row as acsylla gives it back: ``column_value`` by name, datetimes naive UTC."""

    values: dict[str, Any]

    def column_value(self, name: str) -> Any:
        value = self.values[name]
        return value.replace(tzinfo=None) if isinstance(value, datetime) else value


def stored(values: list[Any]) -> StoredRow:
    """The row these insert values leave, read as ``ecom-verify`` reads it."""
    return stored_row(Read(dict(zip(ORDER_COLUMNS, values, strict=True))))


def parked(values: list[Any]) -> ParkedRow:
    return parked_row(Read(dict(zip(PARKED_COLUMNS, values[:6], strict=True))))


class Tables:
    def __init__(self, rows: list[StoredRow], parked: list[ParkedRow]) -> None:
        self.rows, self.parked = rows, parked

    async def order_rows(self) -> AsyncIterator[StoredRow]:
        for row in self.rows:
            yield row

    async def parked_rows(self) -> AsyncIterator[ParkedRow]:
        for row in self.parked:
            yield row


async def test_the_synthetic_tables_pass_the_verifier() -> None:
    shape = Shape(400)
    lines: list[str] = []
    rows = [stored(v) for v in _chunk(shape, 0, 250, lines) + _chunk(shape, 250, 400, lines)]
    orphans = [make_payment(k, ORPHAN_BASE + k) for k in range(1, shape.orphans + 1)]
    lines += [payment_record(p.body, orphan=True) for p in orphans]
    index = ManifestIndex.build(lines)
    try:
        report = await check(Tables(rows, [parked(parked_values(p)) for p in orphans]), index)
    finally:
        index.close()
    assert report.ok, report.examples
    assert report.totals["orders"] == 400
    assert report.totals["payments_joined"] == 380  # one order in 20 unpaid
    assert report.totals["payments_parked"] == shape.orphans == 4
    assert report.totals["duplicates_published"] > 0
    assert report.observed["still_parked"] == 4
    assert shape.hole not in {row.order_id for row in rows}
    assert min(r.order_id for r in rows) < shape.hole < max(r.order_id for r in rows)


def test_the_orders_to_break_are_distinct_and_paid() -> None:
    shape = Shape(2000)
    victims = _victims(shape)
    assert len(set(victims)) == len(victims) == 11
    assert all(shape.paid(i) and not shape.reemitted(i) for i in victims)


def test_the_tampered_values_differ_by_one_character() -> None:
    changed = other_last_digit(Decimal("105.00501504513541"))
    assert str(changed) == "105.00501504513542"
    assert other_last_digit(Decimal("100.9")) == Decimal("100.0")
    assert other_last_byte("5 Main St, City A, Country") == "5 Main St, City A, Countrx"
