"""The verifier's judgement: stored rows against the manifest's index, category by category.

The tables come in through :class:`Tables` (Cassandra in the command, a fake in unit tests),
one row at a time; what was seen is written to the index, so memory holds a page or two of rows.
Each defect is counted in one category (a missing row in ``orders_missing`` and, when a
payment was expected, in ``payments_missing`` too):

- ``orders_missing``: an order the manifest published has no row (or a row with only
  payment columns);
- ``orders_wrong``: a stored order differs from the version published last (values compared
  exactly: text byte for byte, the price digit for digit, the creation instant and date);
- ``payments_missing``: the order's winning payment is not joined to it;
- ``payments_wrong``: the right payment id with other fields, or an older (superseded)
  payment of the same order;
- ``payments_wrong_order``: a payment joined to an order it was not published for (a
  payment found in two rows is also caught here, in the row that is not its own);
- ``payments_unexplained``: a joined payment the manifest never published;
- ``parked_but_order_exists``: a DLQ row whose order the manifest published (the DLQ
  worker's pass should have joined and removed it; a payment joined and still parked, a
  duplicate, lands here);
- ``parked_wrong``: a payment expected parked whose DLQ row holds other fields;
- ``parked_missing``: a payment whose order was never published, not in the DLQ table;
- ``parked_unexplained``: a DLQ row the manifest does not explain (unknown payment, or a
  payment parked under an order id it was not published for);
- ``rows_unexplained``: a row of the orders table, within the manifest's id ranges, for an
  order the manifest never published.

Rows outside the manifest's id ranges belong to other runs and are left alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Generic, Protocol, TypeVar

from ecom_verifier.manifest_index import (
    ORDER_FIELD_NAMES,
    PAYMENT_FIELD_NAMES,
    ManifestIndex,
    OrderFields,
    PaymentFields,
)

CATEGORIES: Final = (
    "orders_missing",
    "orders_wrong",
    "payments_missing",
    "payments_wrong",
    "payments_wrong_order",
    "payments_unexplained",
    "parked_but_order_exists",
    "parked_wrong",
    "parked_missing",
    "parked_unexplained",
    "rows_unexplained",
)
EXAMPLES: Final = 10
_FLUSH: Final = 5000
_SOURCE_TOTALS: Final = {
    "stream": "joined_on_stream",
    "order": "joined_by_order_consumer",
    "dlq": "joined_by_dlq_worker",
}


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One row of the orders table, its values in the index's form."""

    order_id: int
    order: OrderFields | None  # None when the row has no order columns
    payment: PaymentFields | None  # None when no payment is joined
    source: str | None = None  # payment_source


@dataclass(frozen=True, slots=True)
class ParkedRow:
    """One row of the DLQ table, its payment fields in the index's form."""

    order_id: int
    payment: PaymentFields  # payment_id first; the other fields None in a stub row

    @property
    def payment_id(self) -> int:
        return self.payment[0]


class Tables(Protocol):
    def order_rows(self) -> AsyncIterator[StoredRow]: ...

    def parked_rows(self) -> AsyncIterator[ParkedRow]: ...


def _observed() -> dict[str, int]:
    names = (
        "orders_stored",
        "joined_on_stream",
        "joined_by_order_consumer",
        "joined_by_dlq_worker",
        "still_parked",
    )
    return dict.fromkeys((*names, "order_rows_read", "parked_rows_read", "rows_out_of_scope"), 0)


@dataclass(slots=True)
class Report:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    examples: dict[str, list[str]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    observed: dict[str, int] = field(default_factory=_observed)

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())

    def add(self, category: str, example: str) -> None:
        self.counts[category] += 1
        shown = self.examples.setdefault(category, [])
        if len(shown) < EXAMPLES:
            shown.append(example)

    def add_all(self, category: str, examples: Iterable[object]) -> None:
        for example in examples:
            self.add(category, str(example))


def _diff(names: tuple[str, ...], got: tuple[object, ...], want: tuple[object, ...]) -> str:
    return ", ".join(
        f"{name} {g!r} (manifest {w!r})"
        for name, g, w in zip(names, got, want, strict=True)
        if g != w
    )


def judge_row(row: StoredRow, index: ManifestIndex, report: Report) -> None:
    """Count what is wrong with one in-scope row of the orders table."""
    expected = index.expected(row.order_id)
    if expected is None:
        report.add("rows_unexplained", f"{row.order_id}: the manifest has no such order")
        return
    if row.order is None:
        report.add("orders_missing", f"{row.order_id} (a row with payment columns only)")
    elif row.order != expected.order:
        diff = _diff(ORDER_FIELD_NAMES, row.order, expected.order)
        report.add("orders_wrong", f"{row.order_id}: {diff}")
    _judge_payment(row, expected.payment, index, report)


def _judge_payment(
    row: StoredRow, want: PaymentFields | None, index: ManifestIndex, report: Report
) -> None:
    got = row.payment
    if got == want:
        return
    if got is None:
        report.add("payments_missing", f"{row.order_id}: payment {want and want[0]}")
        return
    if want is not None and got[0] == want[0]:
        report.add("payments_wrong", f"{row.order_id}: {_diff(PAYMENT_FIELD_NAMES, got, want)}")
        return
    owners = index.payment_orders(got[0])
    if not owners:
        report.add("payments_unexplained", f"{row.order_id}: payment {got[0]}")
    elif row.order_id not in owners:
        report.add("payments_wrong_order", f"{row.order_id}: payment {got[0]} of order {owners[0]}")
    else:
        newer = want[0] if want else None
        report.add("payments_wrong", f"{row.order_id}: payment {got[0]} superseded by {newer}")


def judge_parked(row: ParkedRow, index: ManifestIndex, report: Report) -> bool:
    """Count what is wrong with one in-scope DLQ row; True when it is expected there."""
    order_id, payment_id = row.order_id, row.payment_id
    key = f"{order_id}/{payment_id}"
    if index.has_order(order_id):
        report.add("parked_but_order_exists", key)
        return False
    want = index.parked_payment(order_id, payment_id)
    if want is not None:
        if row.payment != want:
            report.add("parked_wrong", f"{key}: {_diff(PAYMENT_FIELD_NAMES, row.payment, want)}")
        return True
    owners = index.payment_orders(payment_id)
    why = f" (published for order {owners[0]})" if owners else " (never published)"
    report.add("parked_unexplained", key + why)
    return False


async def check(tables: Tables, index: ManifestIndex) -> Report:
    """One full check of both tables against the index."""
    report = Report()
    index.start_pass()
    await _check_rows(tables, index, report)
    await _check_parked(tables, index, report)
    report.totals = {
        "manifest_lines": index.totals.published,
        "duplicates_published": index.totals.duplicates,
        "orders": index.orders,
        "payments_joined": index.joined,
        "payments_parked": index.parked,
        "malformed": index.totals.malformed,
    }
    return report


async def _check_rows(tables: Tables, index: ManifestIndex, report: Report) -> None:
    observed = report.observed
    seen = _Seen[int](index.saw_rows)
    async for row in _in_scope(tables.order_rows(), index, observed, "order_rows_read"):
        judge_row(row, index, report)
        seen.add(row.order_id)
        observed["orders_stored"] += row.order is not None
        if (total := _SOURCE_TOTALS.get(row.source or "")) and row.payment is not None:
            observed[total] += 1
    seen.flush()
    report.add_all("orders_missing", index.unseen_orders())
    report.add_all("payments_missing", index.unseen_orders(paid_only=True))


async def _check_parked(tables: Tables, index: ManifestIndex, report: Report) -> None:
    observed = report.observed
    seen = _Seen[tuple[int, int]](index.saw_parked)
    async for row in _in_scope(tables.parked_rows(), index, observed, "parked_rows_read"):
        if judge_parked(row, index, report):
            seen.add((row.order_id, row.payment_id))
            observed["still_parked"] += 1
    seen.flush()
    report.add_all("parked_missing", (f"{o}/{p}" for o, p in index.unseen_parked()))


class _OfAnOrder(Protocol):
    @property
    def order_id(self) -> int: ...


_Row = TypeVar("_Row", bound=_OfAnOrder)
_Key = TypeVar("_Key")


async def _in_scope(
    rows: AsyncIterator[_Row], index: ManifestIndex, observed: dict[str, int], read: str
) -> AsyncIterator[_Row]:
    """The rows of orders the manifest covers; every row counted in ``read``, the others
    in ``rows_out_of_scope``."""
    async for row in rows:
        observed[read] += 1
        if index.in_scope(row.order_id):
            yield row
        else:
            observed["rows_out_of_scope"] += 1


class _Seen(Generic[_Key]):
    """Keys a scan saw, handed to the index a batch at a time (and the rest by ``flush``)."""

    def __init__(self, hand: Callable[[list[_Key]], None]) -> None:
        self._hand = hand
        self._keys: list[_Key] = []

    def add(self, key: _Key) -> None:
        self._keys.append(key)
        if len(self._keys) >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        self._hand(self._keys)
        self._keys = []
