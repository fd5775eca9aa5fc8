"""The producer's ground truth: one JSON line per published message, and what it implies.

Records, by ``kind``:

- ``{"kind": "order", "duplicate": false, "event": BODY}`` and
  ``{"kind": "payment", "orphan": false, "duplicate": false, "event": BODY}``: BODY is the
  message body exactly as published, its JSON text embedded as is (the writers concatenate
  strings, they never encode the event again), so it is the record's last field. ``orphan``
  marks a payment whose order is never published; ``duplicate`` a message published again.
- ``{"kind": "malformed", "topic": "orders", "reason": "invalid_json"}``: a bad message and
  the reason the pipeline must give.

The producer adds ``"message_id"``, the id Pub/Sub gave the message, to each record once it was
accepted (:func:`with_message_id`): before ``event``, which stays last; last in a malformed
record. A line without it reads all the same; the dead-letter check of ``ecom-verify`` needs
it on every malformed record.

Lines are read with every JSON number that has a fraction or an exponent as a ``Decimal`` from
its own digits (a price of ``929.6972748780319`` stays exactly that), and they are in
publishing order: the producer writes a phase's lines once Pub/Sub accepted the phase.

The rules that fold the lines into what the tables must hold are written here, from the
manifest alone, apart from the services' code (:mod:`ecom_shared.events`), so that a mistake
there is not repeated in the check:

- an order's row holds the version published last, the later line (when two lines both
  carry ``updated_at``, as hand-made ones may, the later ``updated_at`` decides instead;
  the apps send none);
- the order columns hold text as sent, the price's exact decimal, ``order_created_at`` the
  creation instant in milliseconds (a date-only ``creation_date`` is that day's midnight UTC)
  and ``order_created_on`` the date (a time's own date, in its own offset);
- of two lines of one payment (one ``payment_id``), the later ``payment_datetime`` (to the
  second) wins, at the same second the later line;
- an order's payment is the one with the latest ``payment_datetime`` (to the second), ties
  broken by the payment id's last three digits, then by the larger id;
- a payment whose order was never published stays parked.

:func:`expected_state` folds a small manifest into Python objects (the tests and the demo);
:mod:`ecom_verifier.manifest_index` folds any size into an on-disk index with the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TextIO

from ecom_shared.clock import as_utc, to_micros, to_millis

_EVENT_KEY: Final = '"event": '


def _flag(value: bool) -> str:
    return "true" if value else "false"


def order_record(body: str, *, duplicate: bool = False) -> str:
    """The line of an order published with this body (its JSON text, as sent)."""
    return f'{{"kind": "order", "duplicate": {_flag(duplicate)}, {_EVENT_KEY}{body}}}'


def payment_record(body: str, *, orphan: bool, duplicate: bool = False) -> str:
    """The line of a payment published with this body (its JSON text, as sent)."""
    flags = f'"orphan": {_flag(orphan)}, "duplicate": {_flag(duplicate)}'
    return f'{{"kind": "payment", {flags}, {_EVENT_KEY}{body}}}'


def malformed_record(topic: str, reason: str) -> str:
    return json.dumps({"kind": "malformed", "topic": topic, "reason": reason})


def with_message_id(record: str, message_id: str) -> str:
    """``record`` with the id Pub/Sub gave its message: before ``event`` (which must stay the
    last field), or last in a record without one. The records' fixed prefixes hold no
    ``"event": `` text of their own, so its first occurrence is the key."""
    field = f'"message_id": {json.dumps(message_id)}'
    at = record.find(_EVENT_KEY)
    if at >= 0:
        return f"{record[:at]}{field}, {record[at:]}"
    return f"{record[:-1]}, {field}}}"


def read_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Each record of the manifest, numbers with a fraction as exact decimals."""
    for _, record in _numbered(lines):
        yield record


def _numbered(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise ValueError(f"manifest line {number} is not JSON: {exc.msg}") from None
        if not isinstance(record, dict) or "kind" not in record:
            raise ValueError(f"manifest line {number} has no 'kind'")
        yield text, record


def _body(text: str, record: dict[str, Any]) -> bytes:
    """The body of an order or payment record line exactly as it was published."""
    start = text.find(_EVENT_KEY)
    body = text[start + len(_EVENT_KEY) : -1] if start >= 0 and text.endswith("}") else ""
    try:
        same = json.loads(body, parse_float=Decimal) == record.get("event")
    except json.JSONDecodeError:
        same = False
    if not same:
        raise ValueError(f"'event' is not the last field of {text[:80]!r}")
    return body.encode()


# The rules, as values in the form the tables hold them.


def exact_decimal(value: object) -> Decimal:
    """A JSON number as the decimal of its digits (an integer is a decimal too)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(f"expected a JSON number, got {type(value).__name__}")


def millis(moment: datetime) -> int:
    """Milliseconds since the epoch, as Cassandra keeps a timestamp (naive means UTC)."""
    return to_millis(as_utc(moment))


def micros(text: str) -> int:
    """Microseconds since the epoch of an ISO 8601 time (naive means UTC)."""
    return to_micros(as_utc(datetime.fromisoformat(text)))


def creation(text: str) -> tuple[int, date]:
    """``order_created_at`` (ms) and ``order_created_on`` of a ``creation_date`` as sent."""
    moment = datetime.fromisoformat(text)  # a date only reads as its midnight, naive: UTC
    return millis(moment), moment.date()


def payment_version(event: dict[str, Any]) -> tuple[int, int]:
    """What decides between two payments of an order: the later wins."""
    paid_seconds = micros(event["payment_datetime"]) // 1_000_000
    return paid_seconds * 1000 + event["payment_id"] % 1000, event["payment_id"]


def replaces(new: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether order version ``new``, on a later line, is what the row ends up holding."""
    new_at, current_at = new.get("updated_at"), current.get("updated_at")
    if new_at is None or current_at is None:
        return True  # published later
    return micros(new_at) >= micros(current_at)


@dataclass(frozen=True, slots=True)
class Sent:
    """One event as published: its body's values (exact decimals) and the body itself."""

    event: dict[str, Any]
    body: bytes

    @property
    def order_id(self) -> int:
        return int(self.event["order_id"])

    @property
    def payment_id(self) -> int:
        return int(self.event["payment_id"])


@dataclass(slots=True)
class ExpectedState:
    """What the tables must hold once every message has been handled and the DLQ worker ran."""

    orders: dict[int, Sent] = field(default_factory=dict)  # version published last, by id
    payments: dict[int, Sent] = field(default_factory=dict)  # winning payment per order id
    parked: dict[tuple[int, int], Sent] = field(default_factory=dict)  # orphans
    malformed: dict[str, int] = field(default_factory=dict)  # reason -> count
    malformed_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    """(topic, message id) -> reason, for malformed records that name their message."""
    payment_ids: set[int] = field(default_factory=set)  # every payment published
    superseded: list[Sent] = field(default_factory=list)  # lost to a later one, same order
    published: int = 0
    duplicates: int = 0


def expected_state(lines: Iterable[str]) -> ExpectedState:
    state = ExpectedState()
    payments: dict[tuple[int, int], Sent] = {}
    for text, record in _numbered(lines):
        state.published += 1
        state.duplicates += bool(record.get("duplicate"))
        kind = record["kind"]
        if kind == "order":
            sent = Sent(record["event"], _body(text, record))
            current = state.orders.get(sent.order_id)
            if current is None or replaces(sent.event, current.event):
                state.orders[sent.order_id] = sent
        elif kind == "payment":
            sent = Sent(record["event"], _body(text, record))
            key = (sent.order_id, sent.payment_id)
            known = payments.get(key)
            if known is None or payment_version(sent.event) >= payment_version(known.event):
                payments[key] = sent
        elif kind == "malformed":
            state.malformed[record["reason"]] = state.malformed.get(record["reason"], 0) + 1
            if "message_id" in record:
                state.malformed_ids[(record["topic"], record["message_id"])] = record["reason"]
    for (order_id, payment_id), sent in payments.items():
        state.payment_ids.add(payment_id)
        if order_id not in state.orders:
            state.parked[(order_id, payment_id)] = sent
        else:
            _fold_payment(state, sent)
    return state


def _fold_payment(state: ExpectedState, payment: Sent) -> None:
    current = state.payments.get(payment.order_id)
    if current is None or payment_version(payment.event) > payment_version(current.event):
        state.payments[payment.order_id] = payment
        if current is not None:
            state.superseded.append(current)
    else:
        state.superseded.append(payment)


def load_expected(path: Path) -> ExpectedState:
    with path.open(encoding="utf-8") as handle:
        return expected_state(handle)


def open_manifest(path: Path) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", encoding="utf-8", buffering=1024 * 1024)


def append_records(manifest: TextIO, records: Iterable[str]) -> int:
    """Append ``records`` to an open manifest, one line each; returns how many."""
    lines = [f"{record}\n" for record in records]
    manifest.write("".join(lines))
    return len(lines)
