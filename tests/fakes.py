"""Small in-memory fakes of the ports, for unit tests only (other layers use the real ones)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from ecom_shared.cassandra.store import ParkedPayment, PaymentSource, UnreadableRow
from ecom_shared.clock import from_millis, to_millis
from ecom_shared.events import Order, Payment
from ecom_shared.pubsub.client import OutgoingMessage, ReceivedMessage

_ids = itertools.count(1)


def received(
    data: bytes | None,
    attributes: dict[str, str] | None = None,
    publish_time: datetime | None = None,
) -> ReceivedMessage:
    n = next(_ids)
    return ReceivedMessage(
        ack_id=f"ack-{n}",
        message_id=f"msg-{n}",
        publish_time=publish_time or datetime(2026, 1, 1, tzinfo=UTC),
        data=data,
        attributes=attributes or {},
    )


class FakeSubscription:
    """Serves queued messages, records acks and deadline changes; the next ``fail_pulls``
    pulls (long polls or ``pull_now``, counted apart) and ``fail_acks`` acks raise ``error``.

    Leases are kept as Pub/Sub keeps them: a pulled message's lease ends ``ack_deadline_seconds``
    after the pull, an ``extend`` moves the end to that many seconds from then, and an ack or
    extend that comes after the end is recorded in ``lapsed`` (Pub/Sub would have delivered the
    message again by then). ``ack_deadline_seconds`` is also what the subscription's
    configuration says, unless ``config_error`` makes reading it fail.
    """

    name = "fake-sub"

    def __init__(self, messages: Sequence[ReceivedMessage] = (), *, ack_deadline: int = 60) -> None:
        self.queue: list[ReceivedMessage] = list(messages)
        self.acked: list[str] = []
        self.extended: list[tuple[str, int]] = []
        self.fail_pulls = 0
        self.fail_acks = 0
        self.error: Exception = ConnectionError("emulator went away")
        self.pulls = 0
        self.pulls_now = 0
        self.drained = asyncio.Event()
        self.ack_deadline_seconds = ack_deadline
        self.config_error: Exception | None = None
        self.leases: dict[str, float] = {}  # ack id -> when its lease ends (loop time)
        self.lapsed: list[str] = []

    async def pull(self, max_messages: int, timeout: float) -> list[ReceivedMessage]:
        self.pulls += 1
        self._maybe_fail()
        if not self.queue:
            self.drained.set()
            await asyncio.sleep(0.01)  # a long poll that found nothing, shortened
            return []
        return self._lease(max_messages)

    async def pull_now(self, max_messages: int) -> list[ReceivedMessage]:
        self.pulls_now += 1
        self._maybe_fail()
        return self._lease(max_messages)

    def _maybe_fail(self) -> None:
        if self.fail_pulls:
            self.fail_pulls -= 1
            raise self.error

    def _lease(self, max_messages: int) -> list[ReceivedMessage]:
        batch, self.queue = self.queue[:max_messages], self.queue[max_messages:]
        ends = self._now() + self.ack_deadline_seconds
        self.leases.update((m.ack_id, ends) for m in batch)
        return batch

    async def ack(self, ack_ids: Sequence[str]) -> None:
        if self.fail_acks:
            self.fail_acks -= 1
            raise self.error
        self._check_leases(ack_ids)
        self.acked.extend(ack_ids)

    async def extend(self, ack_ids: Sequence[str], seconds: int) -> None:
        self._check_leases(ack_ids)
        self.extended.extend((ack_id, seconds) for ack_id in ack_ids)
        self.leases.update((ack_id, self._now() + seconds) for ack_id in ack_ids)

    async def read_ack_deadline(self) -> int:
        if self.config_error is not None:
            raise self.config_error
        return self.ack_deadline_seconds

    def _check_leases(self, ack_ids: Sequence[str]) -> None:
        now = self._now()
        self.lapsed.extend(i for i in ack_ids if self.leases.get(i, now) < now)

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()


class FakePublisher:
    """Records what it accepts; refuses, as Pub/Sub does, attributes that are not UTF-8 text
    or exceed its limits. The next ``failures`` publishes raise ``error``."""

    def __init__(self, *, failures: int = 0) -> None:
        self.sent: list[tuple[str, OutgoingMessage]] = []
        self.failures = failures
        self.error: Exception = ConnectionError("publish failed")

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> list[str]:
        if self.failures:
            self.failures -= 1
            raise self.error
        for message in messages:
            _check_attributes(message.attributes)
        self.sent.extend((topic, m) for m in messages)
        return [str(next(_ids)) for _ in messages]

    def on(self, topic: str) -> list[OutgoingMessage]:
        return [m for t, m in self.sent if t == topic]


def _check_attributes(attributes: dict[str, str]) -> None:
    """Pub/Sub's limits: at most 100 attributes, keys up to 256 bytes, values up to 1,024,
    all valid UTF-8 (``encode`` raises on a lone surrogate)."""
    if len(attributes) > 100:
        raise ValueError(f"{len(attributes)} attributes > 100")
    for key, value in attributes.items():
        if len(key.encode()) > 256 or len(value.encode()) > 1024:
            raise ValueError(f"attribute {key[:20]!r} is too long")


class FakeOrders:
    """Keeps, per order id, the order version and the payment with the largest write timestamp,
    like the real table (a tie keeps the later write: the real table would mix the two)."""

    def __init__(self) -> None:
        self.orders: dict[int, tuple[int, Order]] = {}
        self.payments: dict[int, tuple[int, Payment, PaymentSource]] = {}
        self.fail_with: Exception | None = None

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def upsert_order(self, order: Order, version_micros: int, now: datetime) -> None:
        self._check()
        current = self.orders.get(order.order_id)
        if current is None or version_micros >= current[0]:
            self.orders[order.order_id] = (version_micros, order)

    async def order_exists(self, order_id: int) -> bool:
        self._check()
        return order_id in self.orders

    async def set_payment(
        self, payment: Payment, version_micros: int, source: PaymentSource, now: datetime
    ) -> None:
        self._check()
        current = self.payments.get(payment.order_id)
        if current is None or version_micros >= current[0]:
            self.payments[payment.order_id] = (version_micros, payment, source)


class FakeDlq:
    """Parked payments with the real table's timestamps: an insert loses to a row written with
    a larger timestamp, and a delete shadows every write up to its own timestamp (``deleted``
    keeps the tombstones; a stub's delete, with no version, is the client clock's and
    shadows no payment version). ``unreadable`` rows come first in a scan, as a low token's."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, int], ParkedPayment] = {}
        self.deleted: dict[tuple[int, int], int] = {}
        self.unreadable: list[UnreadableRow] = []
        self.fail_scan: Exception | None = None

    async def park(self, payment: Payment, published_at: datetime, now: datetime) -> None:
        key = (payment.order_id, payment.payment_id)
        current = self.rows.get(key)
        attempts = current.attempts if current is not None else 0
        published = from_millis(to_millis(published_at))  # what the column keeps
        parked = ParkedPayment(*key, payment, now, attempts, published)
        if _version(parked) <= self.deleted.get(key, -1):
            return  # shadowed by the delete of this version or a newer one
        if current is None or _version(parked) >= _version(current):
            self.rows[key] = parked

    async def scan(
        self, page_size: int, segments: int
    ) -> AsyncIterator[ParkedPayment | UnreadableRow]:
        if self.fail_scan is not None:
            raise self.fail_scan
        for unreadable in self.unreadable:
            yield unreadable
        for row in list(self.rows.values()):
            yield row

    async def parked_for_many(self, order_ids: list[int]) -> dict[int, list[ParkedPayment]]:
        found: dict[int, list[ParkedPayment]] = {}
        for (order_id, _), row in self.rows.items():
            if order_id in order_ids:
                found.setdefault(order_id, []).append(row)
        return found

    async def record_attempt(self, parked: ParkedPayment, now: datetime) -> None:
        key = (parked.order_id, parked.payment_id)
        if key in self.rows:
            old = self.rows[key]
            self.rows[key] = ParkedPayment(
                old.order_id, old.payment_id, old.payment, old.parked_at, parked.attempts + 1
            )

    async def remove(self, order_id: int, payment_id: int, version: int | None) -> None:
        key = (order_id, payment_id)
        current = self.rows.get(key)
        if version is not None:
            self.deleted[key] = max(version, self.deleted.get(key, version))
        if current is not None and (version is None or _version(current) <= version):
            del self.rows[key]


def _version(parked: ParkedPayment) -> int:
    """A parked row's write timestamp; a stub's is below every version."""
    version = parked.version
    return -1 if version is None else version
