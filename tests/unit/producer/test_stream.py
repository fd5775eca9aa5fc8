"""The producer's planned stream (the apps' format) and the manifest's expected state."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ecom_producer.planned import Chunk
from ecom_producer.stream import (
    COMPLETED,
    ORDER_STATUSES,
    PAYMENT_METHODS,
    StreamOptions,
    StreamPlanner,
)
from ecom_shared.events import EventType, Order, Payment, parse_event
from ecom_shared.versions import order_version_micros, payment_version_micros
from ecom_verifier.checks import ParkedRow, StoredRow, check
from ecom_verifier.manifest import expected_state, order_record, read_records
from ecom_verifier.manifest_index import ManifestIndex
from ecom_verifier.verify import EXIT_USAGE
from ecom_verifier.verify import main as verify_main
from tests.unit.verifier.test_verify import FakeTables

ORDER_FIELDS = [
    "order_id", "customer_id", "item", "quantity", "price", "shipping_address", "order_status",
    "creation_date",
]  # fmt: skip
PAYMENT_FIELDS = [
    "payment_id", "order_id", "payment_method", "card_last_four", "payment_status",
    "payment_datetime",
]  # fmt: skip
PAYMENT_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def records(chunk: Chunk) -> list[dict[str, Any]]:
    """The chunk's manifest records, in publishing order."""
    return list(read_records(p.record for p in chunk.messages()))


def valid(chunk: Chunk) -> list[dict[str, Any]]:
    return [r for r in records(chunk) if r["kind"] != "malformed"]


def test_same_seed_same_stream() -> None:
    a = StreamPlanner(StreamOptions(seed=7)).chunk(200)
    b = StreamPlanner(StreamOptions(seed=7)).chunk(200)
    assert [p.data for p in a.messages()] == [p.data for p in b.messages()]


def test_shares_shape_the_stream() -> None:
    options = StreamOptions(
        seed=3,
        payments_first=0.3,
        no_payment=0.1,
        reemits=0.2,
        duplicates=0.05,
        malformed=0.02,
        orphan_payments=0.05,
    )
    chunk = StreamPlanner(options).chunk(2000)
    kinds = records(chunk)
    orders_main = [p for p in chunk.main if p.topic_kind is EventType.ORDER]
    early_payments = [p for p in chunk.early if p.topic_kind is EventType.PAYMENT]
    assert len(orders_main) == 2000
    assert 0.25 < len(early_payments) / 2000 / 0.9 < 0.35  # ~30 % of the ~90 % that pay
    assert 0.03 < sum(k.get("duplicate", False) for k in kinds) / len(kinds) < 0.07
    assert 0.01 < sum(k["kind"] == "malformed" for k in kinds) / len(kinds) < 0.03
    assert 60 < sum(k.get("orphan", False) for k in kinds) < 140
    assert all(p.record.startswith('{"kind": "order", "duplicate": true') for p in chunk.again
               if p.topic_kind is EventType.ORDER)  # fmt: skip


def test_bodies_are_the_apps_format_with_no_attributes() -> None:
    chunk = StreamPlanner(StreamOptions(seed=5, second_payments=0.3)).chunk(500)
    statuses: Counter[str] = Counter()
    for planned in chunk.messages():
        if planned.label == "malformed":
            assert planned.data or planned.attributes  # Pub/Sub takes no empty message
            continue
        assert planned.attributes == {}
        sent = json.loads(planned.data)
        if planned.topic_kind is EventType.ORDER:
            assert list(sent) == ORDER_FIELDS  # no updated_at
            assert sent["order_status"] in ORDER_STATUSES
            assert date.fromisoformat(sent["creation_date"]).isoformat() == sent["creation_date"]
            assert isinstance(sent["price"], float)
            assert 100 <= sent["price"] <= 1500
            assert f'"price": {sent["price"]!r}' in planned.data.decode()  # json.dumps's repr
        else:
            assert list(sent) == PAYMENT_FIELDS
            assert sent["payment_method"] in PAYMENT_METHODS
            assert re.fullmatch(r"\d{4}", sent["card_last_four"])
            assert PAYMENT_TIME.fullmatch(sent["payment_datetime"])
            statuses[sent["payment_status"]] += 1
    assert set(ORDER_STATUSES) == {
        json.loads(p.data)["order_status"] for p in chunk.main
    }  # every capitalised spelling shows up
    assert statuses[COMPLETED] > 400
    assert set(statuses) - {COMPLETED} <= {"Failed", "Pending"}


def test_text_is_sent_escaped_and_raw_and_reads_back_alike() -> None:
    chunk = StreamPlanner(StreamOptions(seed=9)).chunk(400)
    bodies = [p.data for p in chunk.main]
    items = {json.loads(b)["item"] for b in bodies}
    assert "Robe d'été 🌞" in items
    assert any(b"\\u00e9" in b for b in bodies)  # json.dumps's default ASCII escapes
    assert any("é".encode() in b for b in bodies)  # UTF-8 as is
    assert max(len(json.loads(b)["shipping_address"]) for b in bodies) > 2000


def test_every_valid_message_validates_and_the_oracle_reads_what_the_consumer_reads() -> None:
    chunk = StreamPlanner(StreamOptions(seed=5, reemits=0.5)).chunk(300)
    index = ManifestIndex.build(p.record for p in chunk.messages())
    try:
        for planned in chunk.messages():
            if planned.label == "malformed":
                continue
            if planned.topic_kind is EventType.PAYMENT:
                parse_event(Payment, planned.data, planned.attributes)
                continue
            order = parse_event(Order, planned.data, planned.attributes)
            assert order.unknown_fields == []
            [record] = read_records([planned.record])
            assert record["event"]["price"] == order.price
            assert str(record["event"]["price"]) == str(order.price)  # the same digits
            assert order.created_at == datetime.combine(order.created_on, datetime.min.time(), UTC)
            expected = index.expected(order.order_id)
            assert expected is not None
            assert expected.order[6:] == (
                int(order.created_at.timestamp() * 1000),
                order.created_on,
            )
    finally:
        index.close()


def test_a_17_digit_price_goes_through_the_oracle_exactly() -> None:
    chunk = StreamPlanner(StreamOptions(seed=1)).chunk(2000)
    digits = [
        len(str(r["event"]["price"]).replace(".", "").lstrip("0"))
        for r in valid(chunk) if r["kind"] == "order"
    ]  # fmt: skip
    assert max(digits) == 17
    body = json.dumps({
        "order_id": 5, "customer_id": 1, "item": "Laptop", "quantity": 1,
        "price": 100.00000000000001, "shipping_address": "x", "order_status": "Shipped",
        "creation_date": "2023-09-01",
    })  # fmt: skip
    assert '"price": 100.00000000000001' in body
    state = expected_state([order_record(body)])
    assert state.orders[5].event["price"] == Decimal("100.00000000000001")
    index = ManifestIndex.build([order_record(body)])
    try:
        expected = index.expected(5)
    finally:
        index.close()
    assert expected is not None
    assert expected.order[3] == "100.00000000000001"
    assert expected.order[6:] == (1_693_526_400_000, date(2023, 9, 1))  # midnight UTC


def test_no_phase_holds_two_order_messages_of_one_order_id() -> None:
    chunk = StreamPlanner(StreamOptions(seed=4, reemits=0.5, duplicates=0.3)).chunk(1000)
    for phase in chunk.phases():
        ids = [
            json.loads(p.data)["order_id"]
            for p in phase
            if p.topic_kind is EventType.ORDER and p.label != "malformed"
        ]
        assert len(ids) == len(set(ids))
    assert len(chunk.late) > 0
    assert chunk.again


def test_the_expected_version_is_the_one_published_last() -> None:
    chunk = StreamPlanner(StreamOptions(seed=11, reemits=0.5, duplicates=0.1)).chunk(500)
    last: dict[int, dict[str, Any]] = {}
    for record in valid(chunk):
        if record["kind"] == "order":
            last[record["event"]["order_id"]] = record["event"]
    state = expected_state(p.record for p in chunk.messages())
    assert {k: v.event for k, v in state.orders.items()} == last
    first = {json.loads(p.data)["order_id"]: p.data for p in chunk.main}
    reemit = {json.loads(p.data)["order_id"]: p.data for p in chunk.late if p.label == "orders"}
    again = {p.data for p in chunk.again}
    assert len(reemit) > 200
    assert again & {first[i] for i in reemit}  # some first versions went out again
    for order_id, data in reemit.items():
        assert data != first[order_id]  # fresh fields
        # The re-emit, unless the first version was published again after it.
        wins = first[order_id] if first[order_id] in again else data
        assert state.orders[order_id].body == wins


def test_a_duplicate_of_the_first_version_published_after_the_re_emit_wins() -> None:
    chunk = StreamPlanner(StreamOptions(seed=2, reemits=1.0, duplicates=1.0)).chunk(50)
    # Every message is published again in the last phase, the first version of each order
    # (it comes first) rather than its re-emit: so the first version is what must be stored.
    first = {json.loads(p.data)["order_id"]: p.data for p in chunk.main}
    state = expected_state(p.record for p in chunk.messages())
    assert {i: s.body for i, s in state.orders.items()} == first
    index = ManifestIndex.build(p.record for p in chunk.messages())
    try:
        for order_id, data in first.items():
            expected = index.expected(order_id)
            assert expected is not None
            assert expected.order[5] == json.loads(data)["order_status"]
            assert expected.order[3] == str(json.loads(data, parse_float=Decimal)["price"])
    finally:
        index.close()


def test_expected_state_parks_orphans_and_picks_the_later_payment() -> None:
    chunk = StreamPlanner(
        StreamOptions(seed=11, reemits=1.0, orphan_payments=0.1, second_payments=0.5)
    ).chunk(100)
    state = expected_state(p.record for p in chunk.messages())
    assert len(state.orders) == 100
    assert len(state.parked) >= 5
    assert all(order_id not in state.orders for order_id, _ in state.parked)
    assert all(p.order_id in state.orders for p in state.payments.values())
    assert len(state.superseded) > 20
    assert all(p.event["payment_status"] != COMPLETED for p in state.superseded)
    assert all(p.event["payment_status"] == COMPLETED for p in state.payments.values())


@pytest.mark.usefixtures("restore_logging")  # ecom-verify configures logging for the process
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
