"""The demo producer's manifest read as the messages it records (:class:`tests.apps_stream.Sent`),
so that :func:`tests.apps_tables.expected_from` works out what the tables must hold.

This is independent of the product's manifest folding (``ecom_verifier.manifest``, which
``ecom-verify`` and the demo use to say PASSED): no product code is imported, the lines are read
with :mod:`json` alone, and the rules are those of :mod:`tests.apps_tables`. They agree with the
manifest's on the demo's stream: an order's row holds the version on the later line (the
producer sends no ``updated_at``, which the manifest's rules would let decide; a line with one
is refused here); of an order's payments the later ``payment_datetime`` wins, ties broken by
``payment_id % 1000`` (the producer writes times to the second, so the manifest's rounding to
the second changes nothing, and two different payments that still tie fail the fold); a
payment whose order is never published stays parked; a ``malformed`` record carries no event
and is only dead-lettered, so it is skipped.

A record is ``{"kind": "order" | "payment" | "malformed", ..., "event": BODY}``, one a line in
publish order, with BODY the published JSON text embedded as the last field. A message's body
is that text, sliced from the line and never encoded again; the price keeps its JSON digits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from tests.apps_stream import Number, Sent, Topic

EVENT_KEY: Final = '"event": '
"""The key of the last field; the records' fixed prefixes hold no such text of their own, so
its first occurrence is the key (a body may hold the same text further on)."""
TOPICS: Final[dict[str, Topic]] = {"order": "orders", "payment": "payments"}


@dataclass(frozen=True)
class ManifestStream:
    """The manifest's orders and payments, each in publish order, and how many malformed
    records were skipped."""

    orders: tuple[Sent, ...]
    payments: tuple[Sent, ...]
    malformed: int


def read_manifest(path: Path) -> ManifestStream:
    return manifest_stream(path.read_text(encoding="utf-8").splitlines())


def manifest_stream(lines: Iterable[str]) -> ManifestStream:
    orders: list[Sent] = []
    payments: list[Sent] = []
    malformed = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = json.loads(line, parse_float=Decimal)
        assert isinstance(record, dict), f"line {number}: not a JSON object"
        kind = record["kind"]
        if kind == "malformed":
            assert "event" not in record, f"line {number}: a malformed record with an event"
            malformed += 1
            continue
        sent = _sent(TOPICS[kind], line, record, number)
        (orders if kind == "order" else payments).append(sent)
    return ManifestStream(tuple(orders), tuple(payments), malformed)


def _sent(topic: Topic, line: str, record: dict[str, Any], number: int) -> Sent:
    text = line.rstrip()
    start = text.find(EVENT_KEY)
    assert start >= 0, f"line {number}: no 'event' field"
    assert text.endswith("}"), f"line {number}: not one JSON object"
    body = text[start + len(EVENT_KEY) : -1].encode("utf-8")
    value = json.loads(body, parse_float=Decimal)
    assert value == record["event"], f"line {number}: 'event' is not the last field"
    assert "updated_at" not in value, f"line {number}: an 'updated_at' the rules do not follow"
    price = None
    if topic == "orders":
        digits = json.loads(body, parse_float=Number, parse_int=Number)["price"]
        assert isinstance(digits, Number), f"line {number}: the price is no JSON number"
        price = digits.text
    return Sent(topic, body, value, price, duplicate=bool(record.get("duplicate")))
