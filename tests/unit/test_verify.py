"""The verifier's categories, one by one, on fake tables against a real (SQLite) index."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ecom_producer.verify import EXIT_USAGE, render
from ecom_producer.verify import main as verify_main
from ecom_producer.verify_checks import CATEGORIES, Report, StoredRow, check
from ecom_shared.events import Order, OrderStatus, Payment, PaymentMethod, PaymentStatus, to_micros
from ecom_shared.manifest import (
    expected_state,
    malformed_record,
    order_record,
    payment_record,
)
from ecom_shared.manifest_index import ManifestIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORPHAN = 9_000_001  # an order id no record publishes


def order(order_id: int, status: OrderStatus = OrderStatus.PENDING, minutes: int = 0) -> Order:
    return Order(
        order_id=order_id,
        customer_id=order_id + 7,
        item=f"item {order_id} ☕",
        quantity=2,
        price=Decimal("12.50"),
        shipping_address="1 Main St",
        order_status=status,
        creation_date=T0 + timedelta(seconds=order_id % 1000),
        updated_at=T0 + timedelta(seconds=order_id % 1000, minutes=minutes),
    )


def payment(order_id: int, payment_id: int | None = None, minutes: int = 1) -> Payment:
    return Payment(
        payment_id=payment_id or order_id * 10,
        order_id=order_id,
        payment_method=PaymentMethod.CREDIT_CARD,
        card_last_four="4242",
        payment_status=PaymentStatus.COMPLETED,
        payment_datetime=T0 + timedelta(minutes=minutes, microseconds=order_id),
    )


def _ms(moment: datetime) -> int:
    return to_micros(moment) // 1000


def row(o: Order | None, p: Payment | None, order_id: int | None = None) -> StoredRow:
    """A row as Cassandra holds it for this order and payment."""
    fields = None
    if o is not None:
        fields = (
            o.customer_id, o.item, o.quantity, o.price, o.shipping_address,
            o.order_status.value, _ms(o.creation_date),
        )  # fmt: skip
    paid = None
    if p is not None:
        paid = (
            p.payment_id, p.payment_method.value, p.card_last_four, p.payment_status.value,
            _ms(p.payment_datetime),
        )  # fmt: skip
    key = order_id if order_id is not None else (o or p).order_id  # type: ignore[union-attr]
    return StoredRow(key, fields, paid, "stream" if p else None)


class FakeTables:
    def __init__(self, rows: list[StoredRow], parked: list[tuple[int, int]]) -> None:
        self.rows = rows
        self.parked = parked

    async def order_rows(self) -> AsyncIterator[StoredRow]:
        for stored in self.rows:
            yield stored

    async def parked_rows(self) -> AsyncIterator[tuple[int, int]]:
        for key in self.parked:
            yield key


# Orders 1001..1005; 1002 re-emitted (the newer version first); 1003 has no payment; 1004
# paid twice (the later payment wins); one orphan payment; a duplicate and a malformed line.
NEWER = order(1002, OrderStatus.SHIPPED, minutes=30)
RETRY = payment(1004, 10041, minutes=9)
FAILED = payment(1004, 10040, minutes=2)


def manifest_lines() -> list[str]:
    return [
        order_record(NEWER),
        *(order_record(order(i)) for i in range(1001, 1006)),
        order_record(order(1001), duplicate=True),
        payment_record(payment(1001), orphan=False),
        payment_record(payment(1002), orphan=False),
        payment_record(RETRY, orphan=False),
        payment_record(FAILED, orphan=False),
        payment_record(payment(1005), orphan=False),
        payment_record(payment(ORPHAN), orphan=True),
        malformed_record("orders", "invalid_json"),
    ]


def good_rows() -> list[StoredRow]:
    return [
        row(order(1001), payment(1001)),
        row(NEWER, payment(1002)),
        row(order(1003), None),
        row(order(1004), RETRY),
        row(order(1005), payment(1005)),
    ]


@pytest.fixture
def index() -> Iterator[ManifestIndex]:
    built = ManifestIndex.build(manifest_lines())
    yield built
    built.close()


async def run(index: ManifestIndex, rows: list[StoredRow], parked: list[tuple[int, int]]) -> Report:
    return await check(FakeTables(rows, parked), index)


def only(report: Report, **counts: int) -> None:
    """Exactly these categories are non-zero, with these counts."""
    assert report.counts == dict.fromkeys(CATEGORIES, 0) | counts, report.examples


async def test_matching_tables_pass_with_totals(index: ManifestIndex) -> None:
    report = await run(index, good_rows(), [(ORPHAN, ORPHAN * 10)])
    only(report)
    assert report.ok
    assert report.totals == {
        "manifest_lines": 14,
        "duplicates_published": 1,
        "orders": 5,
        "payments_joined": 4,
        "payments_parked": 1,
        "malformed": 1,
    }
    assert report.observed["orders_stored"] == 5
    assert report.observed["joined_on_stream"] == 4
    assert report.observed["still_parked"] == 1
    assert "verification: PASSED" in render(report)


async def test_missing_rows_count_the_order_and_its_payment(index: ManifestIndex) -> None:
    rows = good_rows()
    rows[0] = row(None, payment(1001))  # only the payment columns were written
    del rows[3]  # 1004: no row at all
    report = await run(index, rows, [(ORPHAN, ORPHAN * 10)])
    only(report, orders_missing=2, payments_missing=1)
    assert report.examples["orders_missing"] == ["1001 (a row with payment columns only)", "1004"]
    assert report.examples["payments_missing"] == ["1004"]
    assert "verification: FAILED" in render(report)


async def test_an_older_version_is_a_wrong_order_with_the_fields_named(
    index: ManifestIndex,
) -> None:
    rows = good_rows()
    rows[1] = row(order(1002), payment(1002))  # the first version, not the newest
    report = await run(index, rows, [(ORPHAN, ORPHAN * 10)])
    only(report, orders_wrong=1)
    [example] = report.examples["orders_wrong"]
    assert example.startswith("1002: ")
    assert "order_status 'pending' (manifest 'shipped')" in example
    assert "shipping_address" not in example  # unchanged field, not listed


async def test_a_row_without_its_payment(index: ManifestIndex) -> None:
    rows = good_rows()
    rows[4] = row(order(1005), None)
    report = await run(index, rows, [(ORPHAN, ORPHAN * 10)])
    only(report, payments_missing=1)
    assert report.examples["payments_missing"] == ["1005: payment 10050"]


async def test_wrong_payment_fields_and_a_superseded_payment(index: ManifestIndex) -> None:
    rows = good_rows()
    changed = payment(1001).model_copy(update={"payment_status": PaymentStatus.REFUNDED})
    rows[0] = row(order(1001), changed)
    rows[3] = row(order(1004), FAILED)  # the older payment of 1004 won
    report = await run(index, rows, [(ORPHAN, ORPHAN * 10)])
    only(report, payments_wrong=2)
    assert report.examples["payments_wrong"] == [
        "1001: payment_status 'refunded' (manifest 'completed')",
        "1004: payment 10040 superseded by 10041",
    ]


async def test_a_payment_joined_to_the_wrong_order_and_a_duplicate(index: ManifestIndex) -> None:
    rows = good_rows()
    rows[2] = row(order(1003), payment(1005))  # 1005's payment also in 1003's row
    wrong = payment(1001).model_copy(update={"order_id": 1002})
    rows[1] = row(NEWER, wrong)  # 1001's payment (as stored) in 1002's row
    report = await run(index, rows, [(ORPHAN, ORPHAN * 10)])
    only(report, payments_wrong_order=2)
    assert report.examples["payments_wrong_order"] == [
        "1002: payment 10010 of order 1001",
        "1003: payment 10050 of order 1005",
    ]


async def test_a_payment_nobody_published(index: ManifestIndex) -> None:
    rows = good_rows()
    rows[2] = row(order(1003), payment(1003, 777))
    report = await run(index, rows, [(ORPHAN, ORPHAN * 10)])
    only(report, payments_unexplained=1)


async def test_parked_rows_judged_against_the_manifest(index: ManifestIndex) -> None:
    parked = [
        (1001, 10010),  # joined and still parked: the worker's pass missed it
        (ORPHAN, 42),  # not published
        (ORPHAN, 10010),  # 1001's payment, parked under the orphan's order id
    ]  # and the orphan itself is not there
    report = await run(index, good_rows(), parked)
    only(report, parked_but_order_exists=1, parked_unexplained=2, parked_missing=1)
    assert report.examples["parked_but_order_exists"] == ["1001/10010"]
    assert report.examples["parked_missing"] == [f"{ORPHAN}/{ORPHAN * 10}"]
    assert report.examples["parked_unexplained"] == [
        f"{ORPHAN}/42 (never published)",
        f"{ORPHAN}/10010 (published for order 1001)",
    ]


async def test_rows_the_manifest_does_not_explain_within_its_ranges_only() -> None:
    index = ManifestIndex.build([*manifest_lines(), order_record(order(1010))])
    rows = [
        *good_rows(),
        row(order(1010), None),
        row(order(1007), None),  # inside 1001..1010, never published
        row(None, payment(ORPHAN)),  # the orphan's payment joined to a row of its own
        row(order(2000), None),  # beyond every range: another run's row
        row(None, payment(ORPHAN - 1)),  # just below the orphans' range
    ]
    parked = [(ORPHAN, ORPHAN * 10), (5000, 50000)]  # 5000: another run's parked payment
    try:
        report = await check(FakeTables(rows, parked), index)
    finally:
        index.close()
    only(report, rows_unexplained=2)
    assert report.examples["rows_unexplained"] == [
        "1007: the manifest has no such order",
        f"{ORPHAN}: the manifest has no such order",
    ]
    assert report.observed["rows_out_of_scope"] == 3


async def test_an_index_of_a_folded_state_judges_alike(index: ManifestIndex) -> None:
    """``verify`` also takes a small ExpectedState (the tests' and the demo's path)."""
    rows = good_rows()
    rows[3] = row(order(1004), FAILED)
    rows[1] = row(order(1002), payment(1002))
    parked: list[tuple[int, int]] = []
    state = expected_state(manifest_lines())
    assert [p.payment_id for p in state.superseded] == [FAILED.payment_id]
    from_state = ManifestIndex.from_state(state)
    try:
        a = await run(index, rows, parked)
        b = await run(from_state, rows, parked)
    finally:
        from_state.close()
    assert a.counts == b.counts
    assert a.examples == b.examples
    assert a.totals == b.totals
    only(a, orders_wrong=1, payments_wrong=1, parked_missing=1)


async def test_a_second_pass_forgets_the_first(index: ManifestIndex) -> None:
    first = await run(index, [], [])
    assert first.counts["orders_missing"] == 5
    second = await run(index, good_rows(), [(ORPHAN, ORPHAN * 10)])
    assert second.ok, second.examples


def test_the_index_on_disk_is_a_file_rebuilt_each_time(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    path.write_bytes(b"left over")
    index = ManifestIndex.build(manifest_lines(), path)
    try:
        assert (index.orders, index.joined, index.parked) == (5, 4, 1)
        assert index.scope == [(1001, 1005), (ORPHAN, ORPHAN)]
        assert path.stat().st_size > len(b"left over")
    finally:
        index.close()


def test_verify_refuses_a_manifest_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "order", "event": {"order_id": 1}}\n', encoding="utf-8")
    assert verify_main(["--manifest", str(bad)]) == EXIT_USAGE
    assert "is not a manifest the producer wrote" in capsys.readouterr().err
    bad.write_text("not json\n", encoding="utf-8")
    assert verify_main(["--manifest", str(bad)]) == EXIT_USAGE
    assert "line 1 is not JSON" in capsys.readouterr().err
