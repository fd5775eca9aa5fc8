"""A realistic, reproducible stream of orders and payments in the apps' format, planned one
chunk at a time.

Bodies are what the apps publish: JSON objects and no attributes. An order has a price as
Python's ``json.dumps`` writes a float from ``random.uniform(100, 1500)`` (up to 17
significant digits), a capitalised status (``Shipped``) and a date-only ``creation_date``; a
payment a method such as ``Credit Card``, four card digits as text and a time to the second
in UTC (``2026-01-01T17:01:30Z``). Half the bodies escape non-ASCII text as ``json.dumps``
does by default (as the apps' producers do), half carry it as UTF-8; now and then an address
is thousands of characters long.

Each chunk is published in four phases, each only once Pub/Sub accepted the one before:

1. ``early``: payments published before their order;
2. ``main``: the orders;
3. ``late``: the other payments, re-emitted orders (the same order id with fresh fields,
   published later, so the version its row must end with), orphan payments (their order is
   never published) and malformed messages;
4. ``again``: duplicates, messages of the phases above published a second time. A duplicate
   is a later publish of its version: a duplicate of an order's first version, published
   after the re-emit, is the version that wins.

No phase holds two messages of one order id on the orders topic, and the publisher leaves
time between phases (:mod:`ecom_producer.publish`), so publishing order is version order.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from ecom_producer.malformed import malformed_message
from ecom_producer.planned import Chunk, Planned
from ecom_shared.events import EventType
from ecom_verifier.manifest import order_record, payment_record

ORPHAN_ID_OFFSET: Final = 4_000_000_000  # orphan payments point at order ids no run publishes
ORDER_STATUSES: Final = ("Shipped", "Pending", "Delivered", "Cancelled")
PAYMENT_METHODS: Final = ("Credit Card", "Debit Card", "PayPal", "Google Pay", "Apple Pay")
COMPLETED: Final = "Completed"
_FAILED_FIRST: Final = ("Failed", "Pending")  # a first payment that a second one replaces
_ASCII_SHARE: Final = 0.5  # bodies with non-ASCII text escaped, as json.dumps does by default
_LONG_ADDRESS_SHARE: Final = 0.01  # addresses of thousands of characters
_PAYMENT_TIME: Final = "%Y-%m-%dT%H:%M:%SZ"

_ITEMS = [
    "Laptop",
    "Phone",
    "Wireless earbuds",
    "Running shoes",
    "Espresso machine",
    "Mechanical keyboard",
    "Cast-iron skillet",
    "Café au lait bowl",
    "Crème brûlée torch",
    "手帳 (planner)",
    "Smörgåsbord tray",
    "Ζεστό τσάι set",
    "Robe d'été 🌞",
    'Vinyl 12" LP \\ "Blue" edition',
    "Tea towel\tlinen",
    "O'Reilly book '; DROP TABLE orders; --",
]
_STREETS = ["Main St", "Rue de Rivoli", "Königsallee", "Calle Mayor", "Baker Street", "銀座通り"]
_CITIES = ["City A", "Paris", "Düsseldorf", "Madrid", "London", "東京"]


Share = Annotated[float, Field(ge=0, le=1)]


class StreamShares(BaseModel):
    """How often each kind of message comes, as fractions in [0, 1]: the one list the
    producer's settings (``ECOM_PRODUCER__<SHARE>``) and flags (``--<share>``) are made of."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payments_first: Share = 0.3  # of the payments: published before their order
    duplicates: Share = 0.02  # of the messages: published again
    no_payment: Share = 0.05  # of the orders: never paid
    orphan_payments: Share = 0.02  # per order: a payment whose order is never published
    reemits: Share = 0.1  # of the orders: published again with fresh fields
    second_payments: Share = 0.02  # of the paid orders: a failed or pending payment first
    malformed: Share = 0.01  # per message: a bad one added, which the pipeline must refuse


class StreamOptions(StreamShares):
    seed: int = 42
    id_base: int = 1_000_000
    start: datetime = Field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))


class StreamPlanner:
    """Plans chunks of the stream; the same options give the same stream."""

    def __init__(self, options: StreamOptions) -> None:
        self._opt = options
        self._rng = random.Random(options.seed)  # noqa: S311 - test data, not security
        self._next_index = 0
        self._orphans = 0

    def chunk(self, orders: int) -> Chunk:
        chunk = Chunk()
        for _ in range(orders):
            self._plan_order(chunk, self._next_index)
            self._next_index += 1
        self._add_orphans(chunk, orders)
        self._add_duplicates(chunk)
        self._add_malformed(chunk)
        return chunk

    def _plan_order(self, chunk: Chunk, index: int) -> None:
        rng, opt = self._rng, self._opt
        order_id = opt.id_base + index
        placed = opt.start + timedelta(seconds=_spread(index))
        customer_id = rng.randint(1, 500_000)
        chunk.main.append(self._order(order_id, customer_id, placed.date()))
        if rng.random() < opt.reemits:
            chunk.late.append(self._order(order_id, customer_id, placed.date()))
        if rng.random() < opt.no_payment:
            return
        paid = placed + timedelta(seconds=rng.randint(1, 3600))
        payment_id = order_id * 10
        if rng.random() < opt.second_payments:
            payments = [
                self._payment(order_id, payment_id, paid, rng.choice(_FAILED_FIRST)),
                self._payment(order_id, payment_id + 1, paid + timedelta(minutes=5), COMPLETED),
            ]
        else:
            payments = [self._payment(order_id, payment_id, paid, COMPLETED)]
        target = chunk.early if rng.random() < opt.payments_first else chunk.late
        target.extend(payments)

    def _add_orphans(self, chunk: Chunk, orders: int) -> None:
        for _ in range(_count(self._rng, orders, self._opt.orphan_payments)):
            self._orphans += 1
            order_id = self._opt.id_base + ORPHAN_ID_OFFSET + self._orphans
            paid = self._opt.start + timedelta(seconds=self._rng.randint(1, 3600))
            chunk.late.append(self._payment(order_id, order_id * 10, paid, COMPLETED, orphan=True))

    def _add_duplicates(self, chunk: Chunk) -> None:
        """Publish some messages again, at most one of each order id (one per phase)."""
        again: set[int] = set()
        for planned in chunk.messages():
            if self._rng.random() >= self._opt.duplicates:
                continue
            if planned.topic_kind is EventType.ORDER:
                order_id = json.loads(planned.data)["order_id"]
                if order_id in again:
                    continue
                again.add(order_id)
            chunk.again.append(_as_duplicate(planned))

    def _add_malformed(self, chunk: Chunk) -> None:
        for _ in range(_count(self._rng, len(chunk), self._opt.malformed)):
            kind = self._rng.choice([EventType.ORDER, EventType.PAYMENT])
            chunk.late.append(malformed_message(self._rng, kind))

    def _order(self, order_id: int, customer_id: int, created_on: date) -> Planned:
        rng = self._rng
        body = self._dumps(
            {
                "order_id": order_id,
                "customer_id": customer_id,
                "item": rng.choice(_ITEMS),
                "quantity": rng.randint(1, 10),
                "price": rng.uniform(100, 1500),
                "shipping_address": self._address(),
                "order_status": rng.choice(ORDER_STATUSES),
                "creation_date": created_on.isoformat(),
            }
        )
        return Planned(EventType.ORDER, body.encode(), order_record(body), "orders")

    def _address(self) -> str:
        rng = self._rng
        street = f"{rng.randint(1, 999)} {rng.choice(_STREETS)}"
        if rng.random() < _LONG_ADDRESS_SHARE:
            street += ", " + ", ".join(f"Building {n}, Floor {n % 40}" for n in range(150))
        return f"{street}, {rng.choice(_CITIES)}, Country"

    def _payment(
        self, order_id: int, payment_id: int, paid: datetime, status: str, *, orphan: bool = False
    ) -> Planned:
        rng = self._rng
        body = self._dumps(
            {
                "payment_id": payment_id,
                "order_id": order_id,
                "payment_method": rng.choice(PAYMENT_METHODS),
                "card_last_four": f"{rng.randint(0, 9999):04d}",
                "payment_status": status,
                "payment_datetime": paid.astimezone(UTC).strftime(_PAYMENT_TIME),
            }
        )
        record = payment_record(body, orphan=orphan)
        return Planned(EventType.PAYMENT, body.encode(), record, "payments")

    def _dumps(self, fields: dict[str, Any]) -> str:
        """A body as ``json.dumps`` writes it: floats as their shortest repr."""
        return json.dumps(fields, ensure_ascii=self._rng.random() < _ASCII_SHARE)


SPAN_SECONDS: Final = 28 * 86_400
"""Orders are placed over four weeks from the start, as a store's history is: the report's
per-day figures then have days to show, and no count of orders reaches the future."""


def _spread(index: int) -> int:
    """The ``index``-th order's second within :data:`SPAN_SECONDS`: a fixed permutation-like
    spread (Knuth's multiplicative hash), so the same options still give the same stream and
    the random draws are not disturbed."""
    return (index * 2_654_435_761) % SPAN_SECONDS


def _count(rng: random.Random, base: int, share: float) -> int:
    """``base * share`` rounded at random, so small chunks still get their share on average."""
    exact = base * share
    whole = int(exact)
    return whole + (1 if rng.random() < exact - whole else 0)


def _as_duplicate(planned: Planned) -> Planned:
    # The flag sits in the record's fixed prefix, before the body: the first match is it.
    record = planned.record.replace('"duplicate": false', '"duplicate": true', 1)
    return Planned(planned.topic_kind, planned.data, record, "duplicates")
