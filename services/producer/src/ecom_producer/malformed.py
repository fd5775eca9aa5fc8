"""Bad messages the pipeline must dead-letter, each with the reason it should give.

Each starts from a valid body in the apps' format and carries exactly one defect that the
contract refuses whatever the spelling of its text (unknown fields and unusual spellings are
accepted, so none is used here), so the expected reason is certain. Every kind exists for both
topics with the same reason:

====================  ===================================  ===================================
kind                  order                                payment
====================  ===================================  ===================================
``truncated_json``    the body cut short                   the body cut short
``not_utf8``          bytes that are not UTF-8             the same
``json_array``        a JSON array, not an object          the same
``missing_field``     no ``order_id``                      no ``order_id``
``wrong_type``        ``"order_id": "17"``                 ``"order_id": "17"``
``negative_id``       ``"order_id": -5``                   ``"order_id": -5``
``number_as_text``    ``"price": "9.99"``                  ``"payment_id": "1017"``
``not_positive``      ``"quantity": 0``                    ``"payment_id": 0``
``impossible_time``   hour 24 in ``creation_date``         hour 24 in ``payment_datetime``
``naive_time``        a time without offset                a time without offset
``huge_body``         over 64 KiB                          over 64 KiB
``empty_body``        no data                              no data
====================  ===================================  ===================================
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from ecom_producer.planned import Planned
from ecom_shared.events import EVENT_TYPE_ATTRIBUTE, EventType
from ecom_verifier.manifest import malformed_record

_ORDER: dict[str, Any] = {
    "order_id": 17,
    "customer_id": 343,
    "item": "Laptop",
    "quantity": 3,
    "price": 929.6972748780319,
    "shipping_address": "123 Main St, City A, Country",
    "order_status": "Shipped",
    "creation_date": "2023-09-01",
}
_PAYMENT: dict[str, Any] = {
    "payment_id": 1017,
    "order_id": 17,
    "payment_method": "Credit Card",
    "card_last_four": "0017",
    "payment_status": "Completed",
    "payment_datetime": "2023-09-01T17:01:30Z",
}
_TIME_FIELD = {EventType.ORDER: "creation_date", EventType.PAYMENT: "payment_datetime"}
_NUMBER_FIELD = {EventType.ORDER: ("price", "9.99"), EventType.PAYMENT: ("payment_id", "1017")}
_POSITIVE_FIELD = {EventType.ORDER: "quantity", EventType.PAYMENT: "payment_id"}


def _body(kind: EventType, **changes: Any) -> bytes:
    base = dict(_ORDER if kind is EventType.ORDER else _PAYMENT)
    for key, value in changes.items():
        if value is _DROP:
            base.pop(key)
        else:
            base[key] = value
    return json.dumps(base).encode()


def _number_as_text(kind: EventType) -> bytes:
    name, text = _NUMBER_FIELD[kind]
    return _body(kind, **{name: text})


_DROP = object()

# name -> (body builder, reason the pipeline gives)
_KINDS: dict[str, tuple[Callable[[EventType], bytes], str]] = {
    "truncated_json": (lambda k: _body(k)[:25], "invalid_json"),
    "not_utf8": (lambda _k: b"\xff\xfe\xfa{not utf-8}", "invalid_json"),
    "json_array": (lambda _k: b"[1, 2, 3]", "invalid_json"),
    "missing_field": (lambda k: _body(k, order_id=_DROP), "missing_field"),
    "wrong_type": (lambda k: _body(k, order_id="17"), "invalid_value"),
    "negative_id": (lambda k: _body(k, order_id=-5), "invalid_value"),
    "number_as_text": (_number_as_text, "invalid_value"),
    "not_positive": (lambda k: _body(k, **{_POSITIVE_FIELD[k]: 0}), "invalid_value"),
    "impossible_time": (
        lambda k: _body(k, **{_TIME_FIELD[k]: "2023-09-01T24:01:30Z"}),
        "invalid_value",
    ),
    "naive_time": (lambda k: _body(k, **{_TIME_FIELD[k]: "2023-09-01T17:01:30"}), "invalid_value"),
    "huge_body": (lambda k: _body(k, order_id=1, zz="x" * 70_000), "body_too_large"),
    "empty_body": (lambda _k: b"", "empty_body"),
}


def malformed_kinds() -> list[str]:
    return sorted(_KINDS)


def malformed_message(rng: random.Random, kind: EventType, name: str | None = None) -> Planned:
    """A planned bad message for the topic of ``kind``; ``name`` picks the defect."""
    chosen = name or rng.choice(malformed_kinds())
    build, reason = _KINDS[chosen]
    topic = "orders" if kind is EventType.ORDER else "payments"
    data = build(kind)
    # Pub/Sub refuses a message with neither data nor attributes: an empty one names its type.
    attributes = {} if data else {EVENT_TYPE_ATTRIBUTE: kind.value}
    return Planned(kind, data, malformed_record(topic, reason), "malformed", attributes)
