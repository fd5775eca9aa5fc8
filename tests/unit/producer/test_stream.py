"""The producer's planned stream: the apps' format, the shares, and phases that never hold two
order messages of one order id."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date
from typing import Any

from ecom_producer.planned import Chunk
from ecom_producer.stream import (
    COMPLETED,
    ORDER_STATUSES,
    PAYMENT_METHODS,
    StreamOptions,
    StreamPlanner,
)
from ecom_shared.events import EventType
from ecom_verifier.manifest import read_records

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
