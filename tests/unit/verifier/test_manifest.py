"""The manifest's expected state, folded from the producer's own streams: the version published
last, the winning payment, orphans parked, and the same values the consumers read."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ecom_producer.stream import (
    COMPLETED,
    StreamOptions,
    StreamPlanner,
)
from ecom_shared.events import EventType, Order, Payment, parse_event
from ecom_verifier.manifest import expected_state, order_record, read_records
from ecom_verifier.manifest_index import ManifestIndex
from tests.unit.producer.test_stream import valid


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
