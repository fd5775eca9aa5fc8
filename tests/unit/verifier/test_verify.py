"""The verifier's categories, one by one, on fake tables against a real (SQLite) index; a
manifest it refuses; and the tables a faithful pipeline leaves, which pass."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ecom_producer.planned import Chunk
from ecom_producer.stream import (
    StreamOptions,
    StreamPlanner,
)
from ecom_shared.cassandra.cqltypes import decimal_to_blob
from ecom_shared.events import EventType, Order, Payment, parse_event
from ecom_shared.versions import order_version_micros, payment_version_micros
from ecom_verifier.checks import CATEGORIES, ParkedRow, Report, StoredRow, check
from ecom_verifier.manifest import (
    expected_state,
    malformed_record,
    order_record,
    payment_record,
)
from ecom_verifier.manifest_index import ManifestIndex
from ecom_verifier.verify import EXIT_USAGE, parked_row, price_text, render, stored_row
from ecom_verifier.verify import main as verify_main

# ecom-verify configures logging for the whole process: put it back after each test.
pytestmark = pytest.mark.usefixtures("restore_logging")

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = date(2026, 1, 1)
DAY_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ORPHAN = 9_000_001  # an order id no record publishes
PRICE = "929.6972748780319"


def order(order_id: int, status: str = "Pending", **changes: Any) -> dict[str, Any]:
    """An order as the apps send it; the price is kept as its JSON text."""
    return {
        "order_id": order_id,
        "customer_id": order_id + 7,
        "item": f"item {order_id} ☕",
        "quantity": 2,
        "price": Decimal(PRICE),
        "shipping_address": "123 Main St, City A, Country",
        "order_status": status,
        "creation_date": "2026-01-01",
        **changes,
    }


def payment(order_id: int, payment_id: int | None = None, minutes: int = 1) -> dict[str, Any]:
    return {
        "payment_id": payment_id or order_id * 10,
        "order_id": order_id,
        "payment_method": "Credit Card",
        "card_last_four": "0042",
        "payment_status": "Completed",
        "payment_datetime": (T0 + timedelta(minutes=minutes, seconds=order_id % 60)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
    }


def body(event: dict[str, Any]) -> str:
    """The body's JSON text, a decimal price written as its own digits (a JSON number)."""
    fields = {k: f"@{v}@" if isinstance(v, Decimal) else v for k, v in event.items()}
    text = json.dumps(fields, ensure_ascii=False)
    for value in event.values():
        if isinstance(value, Decimal):
            text = text.replace(f'"@{value}@"', str(value))
    return text


def order_line(event: dict[str, Any], *, duplicate: bool = False) -> str:
    return order_record(body(event), duplicate=duplicate)


def payment_line(event: dict[str, Any], *, orphan: bool = False) -> str:
    return payment_record(body(event), orphan=orphan)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def paid(p: dict[str, Any]) -> tuple[Any, ...]:
    return (
        p["payment_id"], p["payment_method"], p["card_last_four"], p["payment_status"],
        _ms(p["payment_datetime"]),
    )  # fmt: skip


def row(o: dict[str, Any] | None, p: dict[str, Any] | None, order_id: int = 0) -> StoredRow:
    """A row as Cassandra holds it for this order (sent with a date-only creation date)."""
    fields = None
    if o is not None:
        fields = (
            o["customer_id"], o["item"], o["quantity"], str(o["price"]), o["shipping_address"],
            o["order_status"], DAY_MS, DAY,
        )  # fmt: skip
    key = order_id or (o or p or {})["order_id"]
    return StoredRow(key, fields, None if p is None else paid(p), "stream" if p else None)


def parked(p: dict[str, Any], order_id: int | None = None) -> ParkedRow:
    return ParkedRow(order_id or p["order_id"], paid(p))


class FakeTables:
    def __init__(self, rows: list[StoredRow], parked: list[ParkedRow]) -> None:
        self.rows = rows
        self.parked = parked

    async def order_rows(self) -> AsyncIterator[StoredRow]:
        for stored in self.rows:
            yield stored

    async def parked_rows(self) -> AsyncIterator[ParkedRow]:
        for stored in self.parked:
            yield stored


# Orders 1001..1005; 1002 re-emitted (the later publish wins); 1003 has no payment; 1004 paid
# twice (the later payment wins); one orphan payment; a duplicate and a malformed line.
NEWER = order(1002, "Shipped", price=Decimal("19.90"), shipping_address="2 Königsallee")
RETRY = payment(1004, 10041, minutes=9)
FAILED = payment(1004, 10040, minutes=2) | {"payment_status": "Failed"}
ORPHANED = payment(ORPHAN)


def manifest_lines() -> list[str]:
    return [
        *(order_line(order(i)) for i in range(1001, 1006)),
        order_line(NEWER),
        order_line(order(1001), duplicate=True),
        payment_line(payment(1001)),
        payment_line(payment(1002)),
        payment_line(RETRY),
        payment_line(FAILED),
        payment_line(payment(1005)),
        payment_line(ORPHANED, orphan=True),
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


GOOD_PARKED = [parked(ORPHANED)]


@pytest.fixture
def index() -> Iterator[ManifestIndex]:
    built = ManifestIndex.build(manifest_lines())
    yield built
    built.close()


async def run(index: ManifestIndex, rows: list[StoredRow], parked: list[ParkedRow]) -> Report:
    return await check(FakeTables(rows, parked), index)


def only(report: Report, **counts: int) -> None:
    """Exactly these categories are non-zero, with these counts."""
    assert report.counts == dict.fromkeys(CATEGORIES, 0) | counts, report.examples


async def test_matching_tables_pass_with_totals(index: ManifestIndex) -> None:
    report = await run(index, good_rows(), GOOD_PARKED)
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
    report = await run(index, rows, GOOD_PARKED)
    only(report, orders_missing=2, payments_missing=1)
    assert report.examples["orders_missing"] == ["1001 (a row with payment columns only)", "1004"]
    assert report.examples["payments_missing"] == ["1004"]
    assert "verification: FAILED" in render(report)


async def test_the_earlier_publish_is_a_wrong_order_with_the_fields_named(
    index: ManifestIndex,
) -> None:
    rows = good_rows()
    rows[1] = row(order(1002), payment(1002))  # the first version, published first
    report = await run(index, rows, GOOD_PARKED)
    only(report, orders_wrong=1)
    [example] = report.examples["orders_wrong"]
    assert example.startswith("1002: ")
    assert "order_status 'Pending' (manifest 'Shipped')" in example
    assert f"price '{PRICE}' (manifest '19.90')" in example
    assert "item" not in example  # unchanged field, not listed


async def test_one_tampered_byte_digit_or_case_fails(index: ManifestIndex) -> None:
    rows = good_rows()
    address = order(1001, shipping_address="123 Main St, City A, Countrz")  # one byte
    price = order(1003, price=Decimal(PRICE[:-1] + "8"))  # the last of 16 digits
    status = order(1005, "pending")  # the case of the status
    trailing = order(1004, price=Decimal(PRICE + "0"))  # the same number, other digits
    rows[0], rows[2] = row(address, payment(1001)), row(price, None)
    rows[4], rows[3] = row(status, payment(1005)), row(trailing, RETRY)
    report = await run(index, rows, GOOD_PARKED)
    only(report, orders_wrong=4)
    assert report.examples["orders_wrong"] == [
        "1001: shipping_address '123 Main St, City A, Countrz' (manifest "
        "'123 Main St, City A, Country')",
        f"1003: price '{PRICE[:-1]}8' (manifest '{PRICE}')",
        f"1004: price '{PRICE}0' (manifest '{PRICE}')",
        "1005: order_status 'pending' (manifest 'Pending')",
    ]


async def test_creation_instant_and_date_are_checked(index: ManifestIndex) -> None:
    rows = good_rows()
    wrong_day = rows[2]
    assert wrong_day.order is not None
    fields = list(wrong_day.order)
    fields[7] = date(2025, 12, 31)
    fields[6] = DAY_MS - 1
    rows[2] = StoredRow(1003, tuple(fields), None)  # type: ignore[arg-type]
    report = await run(index, rows, GOOD_PARKED)
    only(report, orders_wrong=1)
    [example] = report.examples["orders_wrong"]
    assert "order_created_at 1767225599999 (manifest 1767225600000)" in example
    assert "order_created_on datetime.date(2025, 12, 31)" in example


def test_a_creation_time_keeps_its_instant_and_its_own_date() -> None:
    sent = order(7, creation_date="2026-01-01T23:30:00-02:00")
    index = ManifestIndex.build([order_line(sent)])
    try:
        expected = index.expected(7)
    finally:
        index.close()
    assert expected is not None
    assert expected.order[6:] == (DAY_MS + (25 * 60 + 30) * 60_000, date(2026, 1, 1))


def test_updated_at_decides_between_hand_made_versions_that_both_carry_it() -> None:
    newer = order(8, "Delivered", updated_at="2026-01-02T00:00:00Z")
    older = order(8, "Pending", updated_at="2026-01-01T00:00:00Z")
    plain = order(9, "Delivered", updated_at="2026-01-02T00:00:00Z")
    lines = [order_line(newer), order_line(older), order_line(plain), order_line(order(9))]
    index = ManifestIndex.build(lines)
    state = expected_state(lines)
    try:
        first, second = index.expected(8), index.expected(9)
    finally:
        index.close()
    assert first is not None
    assert second is not None
    assert first.order[5] == state.orders[8].event["order_status"] == "Delivered"
    assert second.order[5] == state.orders[9].event["order_status"] == "Pending"  # later line


async def test_a_row_without_its_payment(index: ManifestIndex) -> None:
    rows = good_rows()
    rows[4] = row(order(1005), None)
    report = await run(index, rows, GOOD_PARKED)
    only(report, payments_missing=1)
    assert report.examples["payments_missing"] == ["1005: payment 10050"]


async def test_wrong_payment_fields_and_a_superseded_payment(index: ManifestIndex) -> None:
    rows = good_rows()
    rows[0] = row(order(1001), payment(1001) | {"payment_status": "COMPLETED"})
    rows[3] = row(order(1004), FAILED)  # the older payment of 1004 won
    report = await run(index, rows, GOOD_PARKED)
    only(report, payments_wrong=2)
    assert report.examples["payments_wrong"] == [
        "1001: payment_status 'COMPLETED' (manifest 'Completed')",
        "1004: payment 10040 superseded by 10041",
    ]


async def test_a_payment_joined_to_the_wrong_order_and_a_duplicate(index: ManifestIndex) -> None:
    rows = good_rows()
    rows[2] = row(order(1003), payment(1005))  # 1005's payment also in 1003's row
    rows[1] = row(NEWER, payment(1001), order_id=1002)  # 1001's payment in 1002's row
    report = await run(index, rows, GOOD_PARKED)
    only(report, payments_wrong_order=2)
    assert report.examples["payments_wrong_order"] == [
        "1002: payment 10010 of order 1001",
        "1003: payment 10050 of order 1005",
    ]


async def test_a_payment_nobody_published(index: ManifestIndex) -> None:
    rows = good_rows()
    rows[2] = row(order(1003), payment(1003, 777))
    report = await run(index, rows, GOOD_PARKED)
    only(report, payments_unexplained=1)


async def test_parked_rows_judged_against_the_manifest(index: ManifestIndex) -> None:
    rows = [
        parked(payment(1001)),  # joined and still parked: the worker's pass missed it
        parked(payment(ORPHAN, 42)),  # not published
        parked(payment(1001), order_id=ORPHAN),  # 1001's payment, parked under the orphan's id
    ]  # and the orphan itself is not there
    report = await run(index, good_rows(), rows)
    only(report, parked_but_order_exists=1, parked_unexplained=2, parked_missing=1)
    assert report.examples["parked_but_order_exists"] == ["1001/10010"]
    assert report.examples["parked_missing"] == [f"{ORPHAN}/{ORPHAN * 10}"]
    assert report.examples["parked_unexplained"] == [
        f"{ORPHAN}/42 (never published)",
        f"{ORPHAN}/10010 (published for order 1001)",
    ]


async def test_a_parked_payment_with_other_fields_is_wrong(index: ManifestIndex) -> None:
    changed = ORPHANED | {"payment_method": "Credit card"}
    report = await run(index, good_rows(), [parked(changed)])
    only(report, parked_wrong=1)
    assert report.examples["parked_wrong"] == [
        f"{ORPHAN}/{ORPHAN * 10}: payment_method 'Credit card' (manifest 'Credit Card')"
    ]
    assert report.observed["still_parked"] == 1


async def test_rows_the_manifest_does_not_explain_within_its_ranges_only() -> None:
    index = ManifestIndex.build([*manifest_lines(), order_line(order(1010))])
    rows = [
        *good_rows(),
        row(order(1010), None),
        row(order(1007), None),  # inside 1001..1010, never published
        row(None, ORPHANED),  # the orphan's payment joined to a row of its own
        row(order(2000), None),  # beyond every range: another run's row
        row(None, payment(ORPHAN - 1)),  # just below the orphans' range
    ]
    tables = FakeTables(rows, [*GOOD_PARKED, parked(payment(5000))])  # another run's
    try:
        report = await check(tables, index)
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
    state = expected_state(manifest_lines())
    assert [p.payment_id for p in state.superseded] == [FAILED["payment_id"]]
    assert state.orders[1002].body == body(NEWER).encode()  # the body as published
    from_state = ManifestIndex.from_state(state)
    try:
        a = await run(index, rows, [parked(ORPHANED | {"card_last_four": None})])
        b = await run(from_state, rows, [parked(ORPHANED | {"card_last_four": None})])
    finally:
        from_state.close()
    assert a.counts == b.counts
    assert a.examples == b.examples
    assert a.totals == b.totals
    only(a, orders_wrong=1, payments_wrong=1, parked_wrong=1)


async def test_a_second_pass_forgets_the_first(index: ManifestIndex) -> None:
    first = await run(index, [], [])
    assert first.counts["orders_missing"] == 5
    second = await run(index, good_rows(), GOOD_PARKED)
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


@dataclass
class FakeCqlRow:
    """An acsylla row: ``column_value`` by name (datetimes naive UTC, as acsylla gives)."""

    values: dict[str, Any]

    def column_value(self, name: str) -> Any:
        return self.values[name]


@pytest.mark.parametrize("text", [PRICE, "100.00000000000001", "19.90", "10", "1E+2", "1" * 38])
def test_a_price_blob_reads_back_as_its_exact_digits(text: str) -> None:
    assert price_text(decimal_to_blob_exact(Decimal(text))) == str(Decimal(text))
    assert price_text(None) is None


def decimal_to_blob_exact(value: Decimal) -> bytes:
    """The CQL decimal of ``value``, built from its digits (the services' encoder, for up to
    28 digits, must give the same bytes)."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    unscaled = int("".join(map(str, digits))) * (-1 if sign else 1)
    size = (unscaled.bit_length() + 8) // 8
    blob = (-exponent).to_bytes(4, "big", signed=True) + unscaled.to_bytes(size, "big", signed=True)
    if len(digits) <= 28:
        assert decimal_to_blob(value) == blob
    return blob


def test_rows_are_read_into_the_index_form() -> None:
    values = {
        "order_id": 1002, "customer_id": 1009, "item": NEWER["item"], "quantity": 2,
        "price_blob": decimal_to_blob(Decimal("19.90")),
        "shipping_address": NEWER["shipping_address"], "order_status": "Shipped",
        "order_created_at": datetime(2026, 1, 1), "order_created_on": DAY,  # noqa: DTZ001
        "payment_id": 10020, "payment_method": "Credit Card", "card_last_four": "0042",
        "payment_status": "Completed", "paid_at": datetime(2026, 1, 1, 0, 1, 42),  # noqa: DTZ001
        "payment_source": "stream",
    }  # fmt: skip
    assert stored_row(FakeCqlRow(values)) == row(NEWER, payment(1002))
    stub = {"order_id": ORPHAN, "payment_id": ORPHAN * 10} | dict.fromkeys(
        ("payment_method", "card_last_four", "payment_status", "paid_at")
    )
    assert parked_row(FakeCqlRow(stub)) == ParkedRow(ORPHAN, (ORPHAN * 10, None, None, None, None))  # type: ignore[arg-type]


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


def test_verify_refuses_a_missing_or_empty_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert verify_main(["--manifest", str(missing)]) == EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert verify_main(["--manifest", str(empty)]) == EXIT_USAGE
    assert "holds no records" in capsys.readouterr().err


class Simulated:
    """The tables as the services would leave them after a stream, built with the product's
    own parsing and version rules (write times: publish time, or the payment's version)."""

    def __init__(self) -> None:
        self.orders: dict[int, tuple[int, Order]] = {}
        self.payments: dict[int, tuple[int, Payment]] = {}

    def apply(self, chunk: Chunk) -> None:
        for phase_no, phase in enumerate(chunk.phases()):
            published = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(milliseconds=2 * phase_no)
            for planned in phase:
                if planned.label == "malformed":
                    continue
                if planned.topic_kind is EventType.ORDER:
                    order = parse_event(Order, planned.data, None)
                    version = order_version_micros(order, published, planned.data)
                    if version >= self.orders.get(order.order_id, (0, order))[0]:
                        self.orders[order.order_id] = (version, order)
                else:
                    pay = parse_event(Payment, planned.data, None)
                    version = payment_version_micros(pay, published)
                    if version >= self.payments.get(pay.order_id, (0, pay))[0]:
                        self.payments[pay.order_id] = (version, pay)

    def tables(self) -> FakeTables:
        rows, parked = [], []
        for order_id, (_, pay) in self.payments.items():
            fields = (
                pay.payment_id, pay.payment_method, pay.card_last_four, pay.payment_status,
                int(pay.payment_datetime.timestamp() * 1000),
            )  # fmt: skip
            if order_id not in self.orders:
                parked.append(ParkedRow(order_id, fields))
        for order_id, (_, o) in self.orders.items():
            joined = self.payments.get(order_id)
            rows.append(StoredRow(order_id, (
                o.customer_id, o.item, o.quantity, str(o.price), o.shipping_address,
                o.order_status, int(o.created_at.timestamp() * 1000), o.created_on,
            ), None if joined is None else (
                joined[1].payment_id, joined[1].payment_method, joined[1].card_last_four,
                joined[1].payment_status, int(joined[1].payment_datetime.timestamp() * 1000),
            ), "stream"))  # fmt: skip
        return FakeTables(rows, parked)


async def test_the_tables_a_faithful_pipeline_leaves_pass_the_verifier() -> None:
    """The manifest's rules and the services' parsing agree on every value of a stream with
    re-emits, duplicates, second payments, orphans and malformed messages."""
    planner = StreamPlanner(
        StreamOptions(seed=13, reemits=0.3, duplicates=0.2, second_payments=0.2)
    )
    simulated, lines = Simulated(), []
    for _ in range(3):
        chunk = planner.chunk(300)
        simulated.apply(chunk)
        lines += [p.record for p in chunk.messages()]
    index = ManifestIndex.build(lines)
    try:
        report = await check(simulated.tables(), index)
    finally:
        index.close()
    assert report.ok, report.examples
    assert report.totals["orders"] == 900
    assert report.observed["still_parked"] == report.totals["payments_parked"] > 0
