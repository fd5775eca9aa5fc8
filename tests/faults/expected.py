"""The final tables a property-test stream must leave, worked out from its messages alone.

This is the oracle the in-order run and every interleaving are held to. It reads each valid
message's JSON body and publish time with nothing but :mod:`json`, and applies the product's
documented rules written out plainly here (it never calls the handlers, ``ecom_shared.events``,
``ecom_shared.versions`` or ``ecom_verifier.manifest``):

- **an order's row holds its winning version**: the one with the latest ``updated_at``, a
  version without one counting at its publish time (to the millisecond). Two versions that
  tie on that instant are settled by a tie-breaker the product chooses; either one is
  accepted, as a whole version (a row mixing two versions is wrong);
- **every payment of a stored order is joined**, and the row holds the winning payment's
  fields: the later ``payment_datetime`` to the second, then the higher ``payment_id % 1000``,
  then the later publish time;
- **parked are exactly the payments whose order never came**, one row per payment id with its
  winning version's fields and that version's publish time;
- nothing else: no row for an order that never came, nothing parked for one that did.

Write times are left to the comparison with the in-order run: their encoding is the product's
(:mod:`ecom_shared.versions`), and checking it here would mean copying it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from ecom_shared.pubsub.client import ReceivedMessage
from tests.faults.interleaving import Stream

ORDER_FIELDS = (
    "customer_id",
    "item",
    "quantity",
    "price",
    "shipping_address",
    "order_status",
    "order_created_at",
    "order_created_on",
    "order_version_at",
)
PAYMENT_FIELDS = ("payment_id", "payment_method", "card_last_four", "payment_status", "paid_at")
PARKED_FIELDS = (*PAYMENT_FIELDS, "published_at")

Values = dict[str, Any]
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Expected:
    rows: dict[int, list[Values]]
    """By order id: the row's acceptable values (more than one when order versions tie)."""
    parked: dict[tuple[int, int], Values]
    """By (order id, payment id): the parked payment's values."""


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _body(message: ReceivedMessage) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(message.data or b"", parse_float=Decimal)
    return parsed


def _order_values(body: dict[str, Any], published: datetime) -> Values:
    created_on = date.fromisoformat(body["creation_date"])
    updated = body.get("updated_at")
    return {
        "customer_id": body["customer_id"],
        "item": body["item"],
        "quantity": body["quantity"],
        "price": str(body["price"]),
        "shipping_address": body["shipping_address"],
        "order_status": body["order_status"],
        "order_created_at": datetime(created_on.year, created_on.month, created_on.day, tzinfo=UTC),
        "order_created_on": created_on,
        "order_version_at": _ms(_instant(updated) if updated else published),
    }


def _payment(body: dict[str, Any], published: datetime) -> tuple[tuple[Any, ...], Values]:
    """A payment version's rank (higher wins) and its values."""
    paid = _instant(body["payment_datetime"])
    rank = (paid.replace(microsecond=0), body["payment_id"] % 1000, _ms(published))
    values = {
        "payment_id": body["payment_id"],
        "payment_method": body["payment_method"],
        "card_last_four": body.get("card_last_four"),
        "payment_status": body["payment_status"],
        "paid_at": _ms(paid),
        "published_at": _ms(published),
    }
    return rank, values


def _winners(
    items: Iterable[tuple[K, tuple[Any, ...], Values]],
) -> dict[K, list[Values]]:
    """By key, the values of every item that ties for the highest rank."""
    best: dict[K, tuple[tuple[Any, ...], list[Values]]] = {}
    for key, rank, values in items:
        held = best.get(key)
        if held is None or rank > held[0]:
            best[key] = (rank, [values])
        elif rank == held[0] and values not in held[1]:
            held[1].append(values)
    return {key: values for key, (_, values) in best.items()}


def expected_state(stream: Stream) -> Expected:
    orders = [(_body(m), m.publish_time) for m in stream.orders]
    payments = [_payment(_body(m), m.publish_time) for m in stream.payments]
    versions = _winners(
        (body["order_id"], (values["order_version_at"],), values)
        for body, published in orders
        for values in [_order_values(body, published)]
    )
    by_order = _winners(
        (order_id, rank, values)
        for (rank, values), message in zip(payments, stream.payments, strict=True)
        for order_id in [_body(message)["order_id"]]
    )
    by_payment = _winners(
        ((order_id, values["payment_id"]), rank, values)
        for (rank, values), message in zip(payments, stream.payments, strict=True)
        for order_id in [_body(message)["order_id"]]
        if order_id not in versions
    )
    no_payment = dict.fromkeys(PAYMENT_FIELDS)
    rows = {
        order_id: [
            {"order_id": order_id, **order, **_only(PAYMENT_FIELDS, pay)}
            for order in tied
            for pay in by_order.get(order_id, [no_payment])
        ]
        for order_id, tied in versions.items()
    }
    parked = {
        key: {"order_id": key[0], **_only(PARKED_FIELDS, v)} for key, (v,) in by_payment.items()
    }
    return Expected(rows, parked)


def _only(fields: tuple[str, ...], values: Values) -> Values:
    return {name: values[name] for name in fields}


def _as_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _project(row: dict[str, Any], fields: Iterable[str]) -> Values:
    return {name: _as_utc(row.get(name)) for name in ("order_id", *fields)}


def differences(
    expected: Expected, rows: list[dict[str, Any]], parked: list[dict[str, Any]]
) -> list[str]:
    """Every way the dumped tables differ from the expected state, one line each."""
    fields = (*ORDER_FIELDS, *PAYMENT_FIELDS)
    wanted_parked = {key: [values] for key, values in expected.parked.items()}
    return _compare("row", expected.rows, rows, key_of=lambda r: r["order_id"], fields=fields) + (
        _compare(
            "parked",
            wanted_parked,
            parked,
            key_of=lambda r: (r["order_id"], r["payment_id"]),
            fields=PARKED_FIELDS,
        )
    )


def _compare(
    table: str,
    wanted: dict[K, list[Values]],
    got: list[dict[str, Any]],
    *,
    key_of: Callable[[dict[str, Any]], K],
    fields: tuple[str, ...],
) -> list[str]:
    found: list[str] = []
    seen: set[K] = set()
    for row in got:
        key, values = key_of(row), _project(row, fields)
        if key in seen:
            found.append(f"{table} {key}: stored twice")
        elif key not in wanted:
            found.append(f"{table} {key}: unexpected {values}")
        elif values not in wanted[key]:
            found.append(f"{table} {key}: " + " or ".join(_changes(values, w) for w in wanted[key]))
        seen.add(key)
    missing = wanted.keys() - seen
    return found + [f"{table} {key}: missing, expected {wanted[key]}" for key in missing]


def _changes(got: Values, want: Values) -> str:
    """The fields that differ, as ``name stored (expected ...)``."""
    return ", ".join(
        f"{name} {got[name]!r} (expected {want[name]!r})"
        for name in want
        if got[name] != want[name]
    )
