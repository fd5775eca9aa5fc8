"""Event validation: valid events pass unchanged, every kind of bad input gets a clear reason."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from ecom_producer.malformed import _KINDS, malformed_kinds, malformed_message
from ecom_shared.errors import InvalidMessage
from ecom_shared.events import (
    EventType,
    Order,
    Payment,
    event_attributes,
    order_version_micros,
    parse_event,
    payment_version_micros,
    to_micros,
)

ORDER = {
    "order_id": 1,
    "customer_id": 2,
    "item": "Mug",
    "quantity": 3,
    "price": "19.99",
    "shipping_address": "1 Main St",
    "order_status": "pending",
    "creation_date": "2026-01-01T10:00:00Z",
}
PAYMENT = {
    "payment_id": 10,
    "order_id": 1,
    "payment_method": "credit_card",
    "card_last_four": "4242",
    "payment_status": "completed",
    "payment_datetime": "2026-01-01T10:05:00+02:00",
}


def body(base: dict[str, object], **changes: object) -> bytes:
    return json.dumps({**base, **changes}, ensure_ascii=False).encode()


def reason_of(
    model: type[Order] | type[Payment], data: bytes | None, attributes: dict[str, str] | None = None
) -> str:
    parse = (
        (lambda: parse_event(Order, data, attributes))
        if model is Order
        else (lambda: parse_event(Payment, data, attributes))
    )
    with pytest.raises(InvalidMessage) as caught:
        parse()
    assert caught.value.detail  # every refusal says what was wrong
    return caught.value.reason


def test_valid_order_and_payment_parse() -> None:
    order = parse_event(Order, body(ORDER), event_attributes(EventType.ORDER))
    assert order.price == __import__("decimal").Decimal("19.99")
    assert order.creation_date == datetime(2026, 1, 1, 10, tzinfo=UTC)
    payment = parse_event(Payment, body(PAYMENT), event_attributes(EventType.PAYMENT))
    assert payment.payment_datetime == datetime(2026, 1, 1, 8, 5, tzinfo=UTC)  # the same instant
    assert payment.payment_datetime.utcoffset() == timedelta(hours=2)  # kept as sent


@pytest.mark.parametrize("text", ["Crème brûlée 🍮 手帳", "'); DROP TABLE order_payments; --"])
def test_unicode_and_cql_looking_text_are_data(text: str) -> None:
    order = parse_event(Order, body(ORDER, item=text, shipping_address=text), None)
    assert order.item == text
    assert order.shipping_address == text


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"quantity": "3"}, "invalid_value"),  # no coercion from strings
        ({"quantity": 0}, "invalid_value"),
        ({"quantity": 10_001}, "invalid_value"),
        ({"price": "-1.00"}, "invalid_value"),
        ({"price": "1000000000"}, "invalid_value"),
        ({"price": "1.999"}, "invalid_value"),  # money has two places at most
        ({"price": "NaN"}, "invalid_value"),
        ({"price": True}, "invalid_value"),
        ({"creation_date": "2023-09-01T24:01:30Z"}, "invalid_value"),
        ({"creation_date": "2026-01-01T10:00:00"}, "invalid_value"),  # naive
        ({"creation_date": "1970-01-01T00:00:00Z"}, "invalid_value"),
        ({"order_status": "teleported"}, "invalid_value"),
        ({"item": ""}, "invalid_value"),
        ({"item": "x" * 501}, "invalid_value"),
        ({"order_id": 2**63}, "invalid_value"),
        ({"coupon": "FREE"}, "unexpected_field"),
    ],
)
def test_bad_orders_are_refused(changes: dict[str, object], reason: str) -> None:
    assert reason_of(Order, body(ORDER, **changes)) == reason


@pytest.mark.parametrize(
    ("moment", "accepted"),
    [
        ("2000-01-01T00:00:00Z", True),
        ("2000-01-01T01:00:00+02:00", False),  # 1999-12-31T23:00Z: bounds compare instants
        ("2099-12-31T23:59:59Z", True),
        ("2099-12-31T23:00:00-02:00", False),  # 2100-01-01T01:00Z
        ("2100-01-01T00:00:00Z", False),
    ],
)
def test_event_times_fall_between_2000_and_2100(moment: str, accepted: bool) -> None:
    if accepted:
        assert parse_event(Order, body(ORDER, creation_date=moment), None).creation_date
    else:
        assert reason_of(Order, body(ORDER, creation_date=moment)) == "invalid_value"


def test_missing_field() -> None:
    data = {k: v for k, v in ORDER.items() if k != "customer_id"}
    assert reason_of(Order, json.dumps(data).encode()) == "missing_field"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"card_last_four": "42"}, "invalid_value"),
        ({"payment_method": "gold_bars"}, "invalid_value"),
        ({"payment_datetime": "2023-09-01T24:01:30Z"}, "invalid_value"),
        ({"payment_id": -1}, "invalid_value"),
    ],
)
def test_bad_payments_are_refused(changes: dict[str, object], reason: str) -> None:
    assert reason_of(Payment, body(PAYMENT, **changes)) == reason


@pytest.mark.parametrize("data", [b"", None, b"\xff\xfe\x00", b"{", b"[]", b"null", b'"x"'])
def test_not_an_object(data: bytes | None) -> None:
    assert reason_of(Order, data) in {"invalid_json", "empty_body"}


def test_lone_surrogate_is_refused() -> None:
    data = body(ORDER).replace(b'"Mug"', b'"\\ud800"')
    assert reason_of(Order, data) in {"invalid_json", "invalid_value"}


def test_attributes_must_match_the_topic() -> None:
    assert reason_of(Order, body(ORDER), event_attributes(EventType.PAYMENT)) == "wrong_event_type"
    attrs = {**event_attributes(EventType.ORDER), "schema_version": "99"}
    assert reason_of(Order, body(ORDER), attrs) == "unsupported_schema_version"


@pytest.mark.parametrize("name", malformed_kinds())
@pytest.mark.parametrize("kind", [EventType.ORDER, EventType.PAYMENT])
def test_every_malformed_kind_the_producer_emits_gets_its_stated_reason(
    name: str, kind: EventType
) -> None:
    planned = malformed_message(random.Random(1), kind, name)
    model = Order if kind is EventType.ORDER else Payment
    assert reason_of(model, planned.data, planned.attributes) == _KINDS[name][1]
    assert json.loads(planned.record)["reason"] == _KINDS[name][1]


def test_order_version_prefers_updated_at_then_publish_time() -> None:
    order = parse_event(Order, body(ORDER), None)
    published = datetime(2026, 2, 1, tzinfo=UTC)
    assert order_version_micros(order, published) == to_micros(published)
    newer = order.model_copy(update={"updated_at": datetime(2026, 3, 1, tzinfo=UTC)})
    assert order_version_micros(newer, published) == to_micros(datetime(2026, 3, 1, tzinfo=UTC))


def test_payment_versions_never_tie_and_follow_time() -> None:
    first = parse_event(Payment, body(PAYMENT), None)
    same_time = first.model_copy(update={"payment_id": 11})
    later = first.model_copy(
        update={"payment_datetime": first.payment_datetime + timedelta(milliseconds=1)}
    )
    assert payment_version_micros(first) != payment_version_micros(same_time)
    assert payment_version_micros(later) > payment_version_micros(first)
    assert payment_version_micros(later) > payment_version_micros(same_time)
