"""The verifier benchmark's synthetic rows agree with its synthetic manifest (no Cassandra)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from ecom_devtools.bench.verifier import _victims
from ecom_devtools.bench.verifier_rows import ORPHAN_BASE, Shape, _chunk, make_payment
from ecom_producer.verify_checks import StoredRow, check
from ecom_shared.cqltypes import blob_to_decimal
from ecom_shared.events import to_micros
from ecom_shared.manifest import payment_record
from ecom_shared.manifest_index import ManifestIndex


def _ms(moment: datetime) -> int:
    return to_micros(moment) // 1000


def stored(values: list[Any]) -> StoredRow:
    """The row these insert values leave (as ``ecom_producer.verify.stored_row`` reads it)."""
    order_id, customer, item, quantity, price, address, status, created, *paid = values
    order = (customer, item, quantity, blob_to_decimal(price), address, status, _ms(created))
    payment = None
    if paid[0] is not None:
        payment = (paid[0], paid[1], paid[2], paid[3], _ms(paid[4]))
    return StoredRow(order_id, order, payment, paid[5])


class Tables:
    def __init__(self, rows: list[StoredRow], parked: list[tuple[int, int]]) -> None:
        self.rows, self.parked = rows, parked

    async def order_rows(self) -> AsyncIterator[StoredRow]:
        for row in self.rows:
            yield row

    async def parked_rows(self) -> AsyncIterator[tuple[int, int]]:
        for key in self.parked:
            yield key


async def test_the_synthetic_tables_pass_the_verifier() -> None:
    shape = Shape(400)
    lines: list[str] = []
    rows = [stored(v) for v in _chunk(shape, 0, 250, lines) + _chunk(shape, 250, 400, lines)]
    orphans = [make_payment(k, ORPHAN_BASE + k) for k in range(1, shape.orphans + 1)]
    lines += [payment_record(p, orphan=True) for p in orphans]
    index = ManifestIndex.build(lines)
    try:
        report = await check(Tables(rows, [(p.order_id, p.payment_id) for p in orphans]), index)
    finally:
        index.close()
    assert report.ok, report.examples
    assert report.totals["orders"] == 400
    assert report.totals["payments_joined"] == 380  # one order in 20 unpaid
    assert report.totals["payments_parked"] == shape.orphans == 4
    assert report.totals["duplicates_published"] > 0
    assert shape.hole not in {row.order_id for row in rows}
    assert min(r.order_id for r in rows) < shape.hole < max(r.order_id for r in rows)


def test_the_orders_to_break_are_distinct_and_paid() -> None:
    shape = Shape(2000)
    victims = _victims(shape)
    assert len(set(victims)) == len(victims) == 11
    assert all(shape.paid(i) and not shape.reemitted(i) for i in victims)
