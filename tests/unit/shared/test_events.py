"""Event validation: the apps' messages pass with their values as sent, and every kind of bad
input gets a clear reason."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from ecom_producer.malformed import _KINDS, malformed_kinds, malformed_message
from ecom_shared.errors import InvalidMessage
from ecom_shared.events import (
    EventType,
    Order,
    Payment,
    check_event_times,
    order_id_hint,
    parse_event,
)
from tests.bodies import POISON

# The two example bodies of the apps' contract, byte for byte as they publish them.
APPS_ORDER = (
    b'{"order_id": 17, "customer_id": 343, "item": "Laptop", "quantity": 3, '
    b'"price": 929.6972748780319, "shipping_address": "123 Main St, City A, Country", '
    b'"order_status": "Shipped", "creation_date": "2023-09-01"}'
)
APPS_PAYMENT = (
    b'{"payment_id": 1017, "order_id": 17, "payment_method": "Credit Card", '
    b'"card_last_four": "0017", "payment_status": "Completed", '
    b'"payment_datetime": "2023-09-01T17:01:30Z"}'
)
ORDER: dict[str, object] = json.loads(APPS_ORDER)
PAYMENT: dict[str, object] = json.loads(APPS_PAYMENT)


def body(base: dict[str, object], **changes: object) -> bytes:
    return json.dumps({**base, **changes}, ensure_ascii=False).encode()


def with_price(text: str) -> bytes:
    """The apps' order with the price written as this JSON number text, exactly."""
    return APPS_ORDER.replace(b"929.6972748780319", text.encode())


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


def test_the_apps_order_is_taken_as_sent() -> None:
    order = parse_event(Order, APPS_ORDER, None)
    assert order.order_id == 17
    assert order.customer_id == 343
    assert order.item == "Laptop"
    assert order.quantity == 3
    assert order.price == Decimal("929.6972748780319")
    assert str(order.price) == "929.6972748780319"
    assert order.shipping_address == "123 Main St, City A, Country"
    assert order.order_status == "Shipped"
    assert order.creation_date == date(2023, 9, 1)
    assert not isinstance(order.creation_date, datetime)
    assert order.created_on == date(2023, 9, 1)
    assert order.created_at == datetime(2023, 9, 1, tzinfo=UTC)
    assert order.updated_at is None
    assert order.unknown_fields == []


def test_the_apps_payment_is_taken_as_sent() -> None:
    payment = parse_event(Payment, APPS_PAYMENT, None)
    assert payment.payment_id == 1017
    assert payment.order_id == 17
    assert payment.payment_method == "Credit Card"
    assert payment.card_last_four == "0017"
    assert payment.payment_status == "Completed"
    assert payment.payment_datetime == datetime(2023, 9, 1, 17, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize("status", ["Shipped", "Pending", "Delivered", "Cancelled"])
def test_every_status_the_apps_send_is_kept_as_spelled(status: str) -> None:
    assert parse_event(Order, body(ORDER, order_status=status), None).order_status == status


@pytest.mark.parametrize(
    "method", ["Credit Card", "Debit Card", "PayPal", "Google Pay", "Apple Pay"]
)
def test_every_method_the_apps_send_is_kept_as_spelled(method: str) -> None:
    payment = parse_event(Payment, body(PAYMENT, payment_method=method), None)
    assert payment.payment_method == method


@pytest.mark.parametrize(
    "text",
    [
        "929.6972748780319",  # 16 significant digits
        "1234.5678901234567",  # 17, the most a float's repr writes
        "100.00000000000001",
        "19.99",
        "19.90",  # a trailing zero is a digit as sent
        "10",  # a JSON integer is a price too
        "1.5E+3",
        "0.100000000000000005",  # more digits than a float holds (18 places)
    ],
)
def test_prices_keep_the_digits_of_their_json_number(text: str) -> None:
    order = parse_event(Order, with_price(text), None)
    assert order.price == Decimal(text)
    assert order.price.as_tuple() == Decimal(text).as_tuple()  # not merely equal: same digits


@pytest.mark.parametrize(
    "text", ["1e400", "-1.5", "0", "0.0", "1e-19", "1" * 39, '"9.99"', "true", "NaN", "Infinity"]
)
def test_absurd_or_mistyped_prices_are_refused(text: str) -> None:
    assert reason_of(Order, with_price(text)) in {"invalid_value", "invalid_json"}


def test_nan_and_infinity_are_not_json() -> None:
    assert reason_of(Order, with_price("NaN")) == "invalid_json"
    assert reason_of(Order, with_price("-Infinity")) == "invalid_json"


@pytest.mark.parametrize(
    "text", ["Crème brûlée 🍮 手帳", "'); DROP TABLE order_payments; --", "  padded  ", "x\u0000y"]
)
def test_text_is_data_byte_for_byte(text: str) -> None:
    order = parse_event(Order, body(ORDER, item=text, shipping_address=text), None)
    assert order.item == text
    assert order.shipping_address == text


def test_a_long_address_is_an_address() -> None:
    address = "Flat 1, " + "Long Road " * 499  # 4,998 characters
    order = parse_event(Order, body(ORDER, shipping_address=address), None)
    assert order.shipping_address == address
    assert len(order.shipping_address) >= 4_998


def test_statuses_are_text_not_a_closed_list() -> None:
    order = parse_event(Order, body(ORDER, order_status="Partially refunded"), None)
    assert order.order_status == "Partially refunded"
    payment = parse_event(
        Payment, body(PAYMENT, payment_method="Klarna", card_last_four=None), None
    )
    assert payment.payment_method == "Klarna"
    assert payment.card_last_four is None


def test_unknown_fields_are_kept_aside_not_refused() -> None:
    order = parse_event(Order, body(ORDER, coupon="FREE", loyalty={"tier": 2}), None)
    assert order.order_id == 17
    assert sorted(order.unknown_fields) == ["coupon", "loyalty"]
    payment = parse_event(Payment, body(PAYMENT, installments=3), None)
    assert payment.unknown_fields == ["installments"]


def test_a_higher_schema_version_is_read_by_the_same_rule() -> None:
    order = parse_event(Order, body(ORDER, gift_wrap=True), {"schema_version": "7"})
    assert order.unknown_fields == ["gift_wrap"]
    data = {k: v for k, v in ORDER.items() if k != "price"}
    assert reason_of(Order, body(data), {"schema_version": "7"}) == "missing_field"


def test_creation_date_may_be_a_date_or_an_instant() -> None:
    day = parse_event(Order, body(ORDER, creation_date="2023-09-01"), None)
    assert day.created_on == date(2023, 9, 1)
    moment = parse_event(Order, body(ORDER, creation_date="2023-09-01T23:30:00-02:00"), None)
    assert moment.created_at == datetime(2023, 9, 2, 1, 30, tzinfo=UTC)  # the instant it names
    assert moment.created_on == date(2023, 9, 1)  # the date as the app wrote it


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"quantity": "3"}, "invalid_value"),  # no coercion from strings
        ({"quantity": 0}, "invalid_value"),
        ({"quantity": 2**31}, "invalid_value"),  # the column is a 32-bit int
        ({"quantity": 2.0}, "invalid_value"),
        ({"order_id": 2**63}, "invalid_value"),
        ({"order_id": 0}, "invalid_value"),
        ({"order_id": True}, "invalid_value"),
        ({"customer_id": "343"}, "invalid_value"),
        ({"item": 5}, "invalid_value"),
        ({"order_status": None}, "invalid_value"),
        ({"creation_date": "2023-09-01T24:00:00Z"}, "invalid_value"),
        ({"creation_date": "2026-01-01T10:00:00"}, "invalid_value"),  # naive: not an instant
        ({"creation_date": "1999-12-31"}, "invalid_value"),
        ({"creation_date": "2100-01-01"}, "invalid_value"),
        ({"creation_date": "2023-02-30"}, "invalid_value"),
        ({"creation_date": "1693587690"}, "invalid_value"),  # a Unix time is no ISO date
        ({"creation_date": 1693587690}, "invalid_value"),
        ({"updated_at": "2023-09-01"}, "invalid_value"),  # an update time is an instant
    ],
)
def test_bad_orders_are_refused(changes: dict[str, object], reason: str) -> None:
    assert reason_of(Order, body(ORDER, **changes)) == reason


@pytest.mark.parametrize("hour", ["24", "25", "99", "110", "451", "500"])
def test_the_apps_invalid_hours_are_refused_with_a_clear_reason(hour: str) -> None:
    data = body(PAYMENT, payment_datetime=f"2023-09-01T{hour}:01:30Z")
    with pytest.raises(InvalidMessage) as caught:
        parse_event(Payment, data, None)
    assert caught.value.reason == "invalid_value"
    assert f"hour {hour} is not an instant" in caught.value.detail
    assert "payment_datetime" in caught.value.detail


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
        assert parse_event(Payment, body(PAYMENT, payment_datetime=moment), None).payment_datetime
    else:
        assert reason_of(Payment, body(PAYMENT, payment_datetime=moment)) == "invalid_value"


def test_times_keep_the_offset_they_were_sent_with() -> None:
    payment = parse_event(
        Payment, body(PAYMENT, payment_datetime="2026-01-01T10:05:00+02:00"), None
    )
    assert payment.payment_datetime == datetime(2026, 1, 1, 8, 5, tzinfo=UTC)  # the same instant
    assert payment.payment_datetime.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("field", ["order_id", "customer_id", "price", "creation_date", "item"])
def test_missing_field(field: str) -> None:
    data = {k: v for k, v in ORDER.items() if k != field}
    assert reason_of(Order, body(data)) == "missing_field"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"payment_datetime": "2023-09-01T17:01:30"}, "invalid_value"),  # naive
        ({"payment_datetime": "2023-09-01"}, "invalid_value"),
        ({"payment_id": -1}, "invalid_value"),
        ({"card_last_four": 17}, "invalid_value"),
    ],
)
def test_bad_payments_are_refused(changes: dict[str, object], reason: str) -> None:
    assert reason_of(Payment, body(PAYMENT, **changes)) == reason


@pytest.mark.parametrize(
    "data", [b"", None, b"\xff\xfe\x00", b"{", b"[]", b"null", b'"x"', b"[" * 3000]
)
def test_not_an_object(data: bytes | None) -> None:
    assert reason_of(Order, data) in {"invalid_json", "empty_body"}


def test_a_body_over_the_size_limit_is_refused() -> None:
    assert reason_of(Order, body(ORDER, shipping_address="x" * 70_000)) == "body_too_large"


def test_lone_surrogate_is_refused() -> None:
    data = APPS_ORDER.replace(b'"Laptop"', b'"\\ud800"')
    assert reason_of(Order, data) == "invalid_json"


def test_an_event_type_attribute_must_match_the_topic() -> None:
    assert reason_of(Order, APPS_ORDER, {"event_type": "payment"}) == "wrong_event_type"
    assert parse_event(Order, APPS_ORDER, {"event_type": "order"}).order_id == 17


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (APPS_ORDER, 17),
        (b"[" * 3000, None),
        (b"[" * 60_000, None),
        (b'{"order_id": 1' + b"0" * 5000 + b"}", None),
        (b'{"order_id": 1e999999}', None),
        (b'{"order_id": "17"}', None),
        (b"\xff", None),
        (b'{"order_id": 17, "a": ' * 2000, None),
        (b'{"order_id": "\\ud800"}', None),
        (b'{"order_id": true}', None),
        (b'{"order_id": 0}', None),
        (b'{"order_id": -5}', None),
        (b'{"order_id": 9223372036854775808}', None),  # past a bigint
        (b'{"order_id": ' + b"9" * 4000 + b"}", None),
        (b"1e999999", None),
        (b"\x00", None),
    ],
)
def test_the_order_id_hint_never_raises(data: bytes, hint: int | None) -> None:
    assert order_id_hint(data) == hint


@pytest.mark.parametrize("name", POISON)
def test_poison_bodies_are_refused_with_a_reason_never_raised(name: str) -> None:
    data, reason = POISON[name]
    assert reason_of(Order, data) == reason
    reason_of(Payment, data)  # refused as a payment too (for whichever reason comes first)
    assert order_id_hint(data) in (None, 17)


@pytest.mark.parametrize("name", malformed_kinds())
@pytest.mark.parametrize("kind", [EventType.ORDER, EventType.PAYMENT])
def test_every_malformed_kind_the_producer_emits_gets_its_stated_reason(
    name: str, kind: EventType
) -> None:
    planned = malformed_message(random.Random(1), kind, name)
    model = Order if kind is EventType.ORDER else Payment
    assert reason_of(model, planned.data, planned.attributes) == _KINDS[name][1]
    assert json.loads(planned.record)["reason"] == _KINDS[name][1]


PUBLISHED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def refusal(event: Order | Payment, max_ahead: timedelta = timedelta(hours=1)) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as caught:
        check_event_times(event, PUBLISHED, max_ahead)
    assert caught.value.reason == "invalid_value"
    return caught.value


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"updated_at": "2099-01-01T00:00:00Z"}, "updated_at"),
        ({"updated_at": "2026-06-01T13:00:01Z"}, "updated_at"),  # an hour and a second ahead
        ({"creation_date": "2026-06-01T13:30:00Z"}, "creation_date"),
        ({"creation_date": "2026-06-03"}, "creation_date"),  # starts in UTC+14 on the 2nd, 10:00Z
    ],
)
def test_order_times_far_after_the_publish_time_are_refused(
    changes: dict[str, object], field: str
) -> None:
    detail = refusal(parse_event(Order, body(ORDER, **changes), None)).detail
    assert detail.startswith(f"{field}: later than the message's publish time")
    assert "2026-06-01T12:00:00+00:00" in detail
    assert "3600 s" in detail


def test_a_payment_time_far_after_the_publish_time_is_refused() -> None:
    payment = parse_event(Payment, body(PAYMENT, payment_datetime="2099-01-01T00:00:00Z"), None)
    assert refusal(payment).detail.startswith("payment_datetime: later than")


@pytest.mark.parametrize(
    "changes",
    [
        {"updated_at": "2026-06-01T13:00:00Z"},  # exactly the margin ahead
        {"updated_at": "2026-06-01T14:30:00+02:00"},  # 12:30Z: an offset names its instant
        {"creation_date": "2026-06-02"},  # already the 2nd in UTC+14 at 10:00Z on the 1st
        {"creation_date": "2023-09-01", "updated_at": "2026-06-01T12:00:00Z"},
    ],
)
def test_order_times_within_the_margin_pass(changes: dict[str, object]) -> None:
    check_event_times(parse_event(Order, body(ORDER, **changes), None), PUBLISHED)


def test_the_margin_is_a_parameter() -> None:
    order = parse_event(Order, body(ORDER, updated_at="2026-06-01T12:00:01Z"), None)
    check_event_times(order, PUBLISHED, timedelta(seconds=1))
    assert "0 s" in refusal(order, timedelta(0)).detail
    payment = parse_event(Payment, body(PAYMENT, payment_datetime="2026-06-01T12:30:00Z"), None)
    check_event_times(payment, PUBLISHED)


@pytest.mark.parametrize(
    ("creation_date", "updated_at", "accepted"),
    [
        ("2026-01-01T10:00:00Z", "2026-01-01T09:59:59Z", False),
        ("2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z", True),
        ("2026-01-01T10:00:00+02:00", "2026-01-01T08:30:00Z", True),  # 08:00Z created
        ("2026-01-01", "2025-12-31T09:59:59Z", False),  # before the day began anywhere
        ("2026-01-01", "2025-12-31T10:00:00Z", True),  # midnight of the 1st in UTC+14
        ("2026-01-01", "2025-12-31T23:30:00-02:00", True),  # the 1st, 01:30Z
    ],
)
def test_an_update_before_the_creation_is_refused(
    creation_date: str, updated_at: str, accepted: bool
) -> None:
    data = body(ORDER, creation_date=creation_date, updated_at=updated_at)
    if accepted:
        assert parse_event(Order, data, None).updated_at is not None
        return
    with pytest.raises(InvalidMessage) as caught:
        parse_event(Order, data, None)
    assert caught.value.reason == "invalid_value"
    assert "updated_at is before creation_date" in caught.value.detail
