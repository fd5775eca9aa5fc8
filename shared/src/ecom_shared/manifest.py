"""The producer's ground truth: one JSON line per published message, and what it implies.

Records (``kind``): ``order`` and ``payment`` (the event as published, ``orphan`` set on a
payment whose order is never published), ``malformed`` (the reason the pipeline should give).
A duplicate publish is recorded again with ``duplicate: true``. :func:`expected_state` folds
the lines into what the tables must hold once the pipeline is quiet.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ecom_shared.events import Order, Payment, payment_version_micros, to_micros


def order_record(order: Order, *, duplicate: bool = False) -> str:
    return json.dumps(
        {"kind": "order", "duplicate": duplicate, "event": order.model_dump(mode="json")},
        ensure_ascii=False,
    )


def payment_record(payment: Payment, *, orphan: bool, duplicate: bool = False) -> str:
    return json.dumps(
        {
            "kind": "payment",
            "orphan": orphan,
            "duplicate": duplicate,
            "event": payment.model_dump(mode="json"),
        },
        ensure_ascii=False,
    )


def malformed_record(topic: str, reason: str) -> str:
    return json.dumps({"kind": "malformed", "topic": topic, "reason": reason})


@dataclass(slots=True)
class ExpectedState:
    """What the tables must hold once every message has been handled and the DLQ worker ran."""

    orders: dict[int, Order] = field(default_factory=dict)  # newest version per order id
    payments: dict[int, Payment] = field(default_factory=dict)  # winning payment per order id
    parked: dict[tuple[int, int], Payment] = field(default_factory=dict)  # orphans
    malformed: dict[str, int] = field(default_factory=dict)  # reason -> count
    payment_ids: set[int] = field(default_factory=set)  # every payment published
    superseded: list[Payment] = field(default_factory=list)  # lost to a newer one, same order
    published: int = 0
    duplicates: int = 0


def read_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"manifest line {number} is not JSON: {exc.msg}") from None
        if not isinstance(record, dict) or "kind" not in record:
            raise ValueError(f"manifest line {number} has no 'kind'")
        yield record


def expected_state(lines: Iterable[str]) -> ExpectedState:
    state = ExpectedState()
    all_payments: list[Payment] = []
    for record in read_records(lines):
        state.published += 1
        state.duplicates += bool(record.get("duplicate"))
        kind = record["kind"]
        if kind == "order":
            _fold_order(state, Order.model_validate(record["event"], strict=False))
        elif kind == "payment":
            all_payments.append(Payment.model_validate(record["event"], strict=False))
        elif kind == "malformed":
            state.malformed[record["reason"]] = state.malformed.get(record["reason"], 0) + 1
    for payment in all_payments:
        state.payment_ids.add(payment.payment_id)
        if payment.order_id not in state.orders:
            state.parked[(payment.order_id, payment.payment_id)] = payment
            continue
        current = state.payments.get(payment.order_id)
        if current is None or payment_version_micros(payment) > payment_version_micros(current):
            state.payments[payment.order_id] = payment
            if current is not None:
                state.superseded.append(current)
        elif payment.payment_id != current.payment_id:
            state.superseded.append(payment)
    return state


def _fold_order(state: ExpectedState, order: Order) -> None:
    current = state.orders.get(order.order_id)
    if current is None or _version(order) > _version(current):
        state.orders[order.order_id] = order


def _version(order: Order) -> int:
    # The producer always sets updated_at; creation_date is the fallback for hand-made lines.
    return to_micros(order.updated_at or order.creation_date)


def load_expected(path: Path) -> ExpectedState:
    with path.open(encoding="utf-8") as handle:
        return expected_state(handle)


def open_manifest(path: Path) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", encoding="utf-8", buffering=1024 * 1024)
