"""A realistic, reproducible stream of orders and payments, planned one chunk at a time.

Each chunk is published in three phases, so a chosen share of payments (and of newer order
versions) really does reach Pub/Sub before what it refers to:

1. ``early``: payments published before their order, and re-emitted versions published
   before the version they supersede;
2. ``main``: the orders;
3. ``late``: the other payments and re-emitted versions, orphan payments (their order is
   never published), duplicates and malformed messages.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from ecom_producer.malformed import malformed_message
from ecom_producer.planned import Chunk, Planned
from ecom_shared.events import (
    EventType,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    event_attributes,
)
from ecom_shared.manifest import order_record, payment_record

ORPHAN_ID_OFFSET: Final = 4_000_000_000  # orphan payments point at order ids no run publishes
_NEWER_FIRST: Final = 0.5  # share of re-emitted versions published before the older one
_PENDING_SHARE: Final = 0.7  # new orders that start pending (else confirmed)
_COMPLETED_SHARE: Final = 0.9  # payments that complete (else pending)

_ITEMS = [
    "Wireless earbuds",
    "Running shoes",
    "Espresso machine",
    "Yoga mat",
    "Desk lamp",
    "Mechanical keyboard",
    "Cast-iron skillet",
    "Rain jacket",
    "Board game",
    "Phone case",
    "Café au lait bowl",
    "Crème brûlée torch",
    "手帳 (planner)",
    "Smörgåsbord tray",
    "Ζεστό τσάι set",
    "Robe d'été 🌞",
    "O'Reilly book '; DROP TABLE orders; --",
]
_STREETS = ["Main St", "Rue de Rivoli", "Königsallee", "Calle Mayor", "Baker Street", "銀座通り"]
_CITIES = ["Springfield", "Paris", "Düsseldorf", "Madrid", "London", "東京"]


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """Shares are fractions in [0, 1]."""

    seed: int = 42
    id_base: int = 1_000_000
    payments_first: float = 0.3
    duplicates: float = 0.02
    no_payment: float = 0.05
    orphan_payments: float = 0.02
    reemits: float = 0.1
    second_payments: float = 0.02
    malformed: float = 0.01
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))


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
        created = opt.start + timedelta(seconds=index * 0.5 + rng.random())
        order = self._order(opt.id_base + index, created)
        chunk.main.append(_order_message(order))
        if rng.random() < opt.reemits:
            newer = order.model_copy(
                update={
                    "order_status": rng.choice(
                        [OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED]
                    ),
                    "shipping_address": self._address(),
                    "updated_at": created + timedelta(minutes=rng.randint(1, 600)),
                }
            )
            # Half the newer versions go out before the version they supersede.
            (chunk.early if rng.random() < _NEWER_FIRST else chunk.late).append(
                _order_message(newer)
            )
        if rng.random() < opt.no_payment:
            return
        payments = [self._payment(order.order_id, order.order_id * 10, created)]
        if rng.random() < opt.second_payments:
            first = payments[0].model_copy(update={"payment_status": PaymentStatus.FAILED})
            retry = self._payment(
                order.order_id, order.order_id * 10 + 1, created + timedelta(minutes=5)
            )
            payments = [first, retry]
        target = chunk.early if rng.random() < opt.payments_first else chunk.late
        target.extend(_payment_message(p, orphan=False) for p in payments)

    def _add_orphans(self, chunk: Chunk, orders: int) -> None:
        for _ in range(_count(self._rng, orders, self._opt.orphan_payments)):
            self._orphans += 1
            order_id = self._opt.id_base + ORPHAN_ID_OFFSET + self._orphans
            payment = self._payment(order_id, order_id * 10, self._opt.start)
            chunk.late.append(_payment_message(payment, orphan=True))

    def _add_duplicates(self, chunk: Chunk) -> None:
        originals = chunk.main + chunk.early + chunk.late
        for planned in originals:
            if self._rng.random() < self._opt.duplicates:
                chunk.late.append(_as_duplicate(planned))

    def _add_malformed(self, chunk: Chunk) -> None:
        for _ in range(_count(self._rng, len(chunk), self._opt.malformed)):
            kind = self._rng.choice([EventType.ORDER, EventType.PAYMENT])
            chunk.late.append(malformed_message(self._rng, kind))

    def _order(self, order_id: int, created: datetime) -> Order:
        rng = self._rng
        cents = rng.randint(199, 250_000)
        return Order(
            order_id=order_id,
            customer_id=rng.randint(1, 500_000),
            item=rng.choice(_ITEMS),
            quantity=rng.choice([1, 1, 1, 2, 2, 3, 5, 10]),
            price=Decimal(cents) / 100,
            shipping_address=self._address(),
            order_status=OrderStatus.PENDING
            if rng.random() < _PENDING_SHARE
            else OrderStatus.CONFIRMED,
            creation_date=created,
            updated_at=created,
        )

    def _address(self) -> str:
        rng = self._rng
        return f"{rng.randint(1, 999)} {rng.choice(_STREETS)}, {rng.choice(_CITIES)}"

    def _payment(self, order_id: int, payment_id: int, after: datetime) -> Payment:
        rng = self._rng
        method = rng.choice(list(PaymentMethod))
        card = method in (PaymentMethod.CREDIT_CARD, PaymentMethod.DEBIT_CARD)
        return Payment(
            payment_id=payment_id,
            order_id=order_id,
            payment_method=method,
            card_last_four=f"{rng.randint(0, 9999):04d}" if card else None,
            payment_status=PaymentStatus.COMPLETED
            if rng.random() < _COMPLETED_SHARE
            else PaymentStatus.PENDING,
            payment_datetime=after + timedelta(seconds=rng.randint(1, 3600)),
        )


def _count(rng: random.Random, base: int, share: float) -> int:
    """``base * share`` rounded at random, so small chunks still get their share on average."""
    exact = base * share
    whole = int(exact)
    return whole + (1 if rng.random() < exact - whole else 0)


def _order_message(order: Order) -> Planned:
    return Planned(
        EventType.ORDER,
        order.model_dump_json().encode(),
        event_attributes(EventType.ORDER),
        order_record(order),
    )


def _payment_message(payment: Payment, *, orphan: bool) -> Planned:
    return Planned(
        EventType.PAYMENT,
        payment.model_dump_json().encode(),
        event_attributes(EventType.PAYMENT),
        payment_record(payment, orphan=orphan),
    )


def _as_duplicate(planned: Planned) -> Planned:
    record = planned.record.replace('"duplicate": false', '"duplicate": true', 1)
    return Planned(planned.topic_kind, planned.data, planned.attributes, record)
