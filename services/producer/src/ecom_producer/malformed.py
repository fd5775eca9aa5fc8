"""Bad messages the pipeline must dead-letter, each with the reason it should give.

Each carries exactly one defect, so the expected reason is certain.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from ecom_producer.planned import Planned
from ecom_shared.events import EventType, event_attributes
from ecom_shared.manifest import malformed_record

_ORDER: dict[str, Any] = {
    "order_id": 77,
    "customer_id": 5,
    "item": "Mug",
    "quantity": 1,
    "price": "9.99",
    "shipping_address": "1 Main St",
    "order_status": "pending",
    "creation_date": "2026-01-01T10:00:00Z",
    "updated_at": "2026-01-01T10:00:00Z",
}
_PAYMENT: dict[str, Any] = {
    "payment_id": 770,
    "order_id": 77,
    "payment_method": "credit_card",
    "card_last_four": "4242",
    "payment_status": "completed",
    "payment_datetime": "2026-01-01T10:05:00Z",
}
_TIME_FIELD = {EventType.ORDER: "creation_date", EventType.PAYMENT: "payment_datetime"}
_ENUM_FIELD = {EventType.ORDER: "order_status", EventType.PAYMENT: "payment_method"}


def _body(kind: EventType, **changes: Any) -> bytes:
    base = dict(_ORDER if kind is EventType.ORDER else _PAYMENT)
    for key, value in changes.items():
        if value is _DROP:
            base.pop(key)
        else:
            base[key] = value
    return json.dumps(base, ensure_ascii=False).encode()


_DROP = object()

# name -> (body builder, reason the pipeline gives)
_KINDS: dict[str, tuple[Callable[[EventType], bytes], str]] = {
    "truncated_json": (lambda k: _body(k)[:25], "invalid_json"),
    "not_utf8": (lambda _k: b"\xff\xfe\xfa{not utf-8}", "invalid_json"),
    "json_array": (lambda _k: b"[1, 2, 3]", "invalid_json"),
    "missing_field": (lambda k: _body(k, order_id=_DROP), "missing_field"),
    "extra_field": (lambda k: _body(k, coupon="FREE"), "unexpected_field"),
    "wrong_type": (lambda k: _body(k, order_id="77"), "invalid_value"),
    "negative_id": (lambda k: _body(k, order_id=-5), "invalid_value"),
    "impossible_time": (
        lambda k: _body(k, **{_TIME_FIELD[k]: "2023-09-01T24:01:30Z"}),
        "invalid_value",
    ),
    "naive_time": (lambda k: _body(k, **{_TIME_FIELD[k]: "2026-01-01T10:00:00"}), "invalid_value"),
    "unknown_enum": (lambda k: _body(k, **{_ENUM_FIELD[k]: "teleported"}), "invalid_value"),
    "cql_in_enum": (
        lambda k: _body(k, **{_ENUM_FIELD[k]: "x'; DROP TABLE ecom_store.order_payments; --"}),
        "invalid_value",
    ),
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
    return Planned(kind, build(kind), event_attributes(kind), malformed_record(topic, reason))
