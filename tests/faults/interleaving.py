"""Streams of orders, payments and bad messages for the property test, and how to play them.

A :class:`Stream` is a handful of orders (each with one to three versions), their payments
(none, one, or a failed one and its retry), payments whose order never comes and malformed
bodies, each as the Pub/Sub message it would be (one message id, one publish time, kept across
redeliveries). :class:`Pipeline` runs the services' own handlers and the DLQ worker's pass
in this process against real Cassandra; :func:`dump` reads the final tables back.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import strategies as st

from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_order_consumer.handler import OrderHandler
from ecom_payment_consumer.handler import PaymentHandler
from ecom_shared.errors import InvalidMessage
from ecom_shared.events import EventType, Order, Payment
from ecom_shared.policy import Action, decide
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.runtime.consumer import Handler
from ecom_shared.runtime.resources import Resources
from tests.bodies import body_of

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STATUSES = ("Pending", "Shipped", "Delivered", "Cancelled")
_message_ids = itertools.count(1)
BAD_BODIES = (b"", b"{not json", b'{"order_id": 1}', b'{"order_id": -5, "x": 1}')
ROW_COLUMNS = (
    "order_id, customer_id, item, quantity, CAST(price AS text) AS price, shipping_address, "
    "order_status, order_created_at, order_created_on, order_version_at, "
    "writetime(order_status) AS order_written, "
    "payment_id, payment_method, card_last_four, payment_status, paid_at, "
    "writetime(payment_status) AS payment_written"
)
"""Every column but the ingestion metadata: when a row was written (``*_ingested_at``) and by
which path the payment came (``payment_source``: ``stream``, or ``order`` or ``dlq`` when it
was parked first) legitimately depend on the delivery order; the facts and their write times
must not."""
DLQ_COLUMNS = (
    "order_id, payment_id, payment_method, card_last_four, payment_status, paid_at, "
    "published_at, writetime(payment_status) AS parked_written"
)


Delivery = tuple[EventType, ReceivedMessage, bool]
"""The topic it came from, the message, and whether it is malformed."""


@dataclass(frozen=True, slots=True)
class Stream:
    orders: list[ReceivedMessage]  # in publish order (not always by update time)
    payments: list[ReceivedMessage]  # orphans (order never published) included
    bad: list[tuple[EventType, ReceivedMessage]]
    order_ids: list[int]
    orphan_ids: list[int]

    @property
    def messages(self) -> list[Delivery]:
        """Every message once, in publish order."""
        return (
            [(EventType.ORDER, m, False) for m in self.orders]
            + [(EventType.PAYMENT, m, False) for m in self.payments]
            + [(kind, m, True) for kind, m in self.bad]
        )

    def describe(self) -> str:
        """Every message once, one line each (for a failure's report): what a reader needs to
        replay the stream by hand."""
        return "\n".join(
            f"{kind.value} {m.message_id} published {m.publish_time.isoformat()}"
            f"{' malformed' if malformed else ''}: {(m.data or b'').decode(errors='replace')}"
            for kind, m, malformed in self.messages
        )


def _message(data: bytes, kind: EventType, published: datetime) -> ReceivedMessage:
    n = next(_message_ids)
    return ReceivedMessage(f"ack-{n}", f"m-{n}", published, data, {})


@st.composite
def order_versions(draw: st.DrawFn, order_id: int) -> list[Order]:
    """One to three versions of an order; some carry no ``updated_at`` (the publish time then
    orders them), and two may share one update time."""
    base = Order(
        order_id=order_id,
        customer_id=draw(st.integers(1, 9)),
        item=draw(st.sampled_from(["Mug", "Lamp", "Crème brûlée torch"])),
        quantity=draw(st.integers(1, 5)),
        price=Decimal(draw(st.integers(100, 99_999))) / 100,
        shipping_address=draw(st.sampled_from(["1 Main St", "2 Rue de Rivoli"])),
        order_status="Pending",
        creation_date=T0.date(),
        updated_at=T0,
    )
    versions = [base]
    for _ in range(draw(st.integers(0, 2))):
        minutes = draw(st.integers(0, 30))
        versions.append(
            base.model_copy(
                update={
                    "order_status": draw(st.sampled_from(STATUSES)),
                    "shipping_address": draw(st.sampled_from(["3 Königsallee", "4 Baker St"])),
                    "updated_at": draw(st.sampled_from([T0 + timedelta(minutes=minutes), None])),
                }
            )
        )
    return versions


@st.composite
def payments_of(draw: st.DrawFn, order_id: int) -> list[Payment]:
    """None, one, or a failed payment and a retry, later or in the same second (the higher
    payment id then wins); the last one may be sent again with a new status and the same
    ``payment_datetime`` (published later: the version that wins)."""
    count = draw(st.integers(0, 2))
    minutes = [0, draw(st.sampled_from([0, 5]))]
    seconds = draw(st.integers(1, 59))
    payments = [
        Payment(
            payment_id=order_id * 10 + i,
            order_id=order_id,
            payment_method=draw(st.sampled_from(["Credit Card", "PayPal"])),
            card_last_four=draw(st.sampled_from(["4242", None])),
            payment_status="Failed" if i + 1 < count else "Completed",
            payment_datetime=T0 + timedelta(minutes=minutes[i], seconds=seconds),
        )
        for i in range(count)
    ]
    resend = draw(st.booleans())
    if payments and resend:
        changes = {
            "payment_status": "Refunded",
            "card_last_four": draw(st.sampled_from(["0000", None])),
        }
        payments.append(payments[-1].model_copy(update=changes))
    return payments


@st.composite
def streams(draw: st.DrawFn, id_base: int) -> Stream:
    order_ids = [id_base + i for i in range(draw(st.integers(1, 4)))]
    orphan_ids = [id_base + 50 + i for i in range(draw(st.integers(0, 2)))]
    published = itertools.count()

    def at() -> datetime:
        return T0 + timedelta(hours=1, seconds=next(published))

    def messages(events: list[Order] | list[Payment], kind: EventType) -> list[ReceivedMessage]:
        return [_message(body_of(e), kind, at()) for e in events]

    orders: list[ReceivedMessage] = []
    payments: list[ReceivedMessage] = []
    for order_id in order_ids:
        orders += messages(draw(order_versions(order_id)), EventType.ORDER)
        payments += messages(draw(payments_of(order_id)), EventType.PAYMENT)
    for order_id in orphan_ids:
        payments += messages(draw(payments_of(order_id).filter(bool)), EventType.PAYMENT)
    defects = st.tuples(st.sampled_from(list(EventType)), st.sampled_from(BAD_BODIES))
    bad = [(kind, _message(body, kind, at())) for kind, body in draw(st.lists(defects, max_size=2))]
    return Stream(orders, payments, bad, order_ids, orphan_ids)


class Pipeline:
    """The order handler, the payment handler and the DLQ worker's reconcile, over one store."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        pubsub = resources.settings.pubsub
        self._handlers: dict[EventType, Handler] = {
            EventType.ORDER: OrderHandler(resources.orders, resources.dlq),
            EventType.PAYMENT: PaymentHandler(
                resources.orders, resources.dlq, resources.publisher, pubsub.dlq_payments_topic
            ),
        }
        worker = WorkerSettings(token_segments=4, page_size=100, concurrency=16)
        self._reconciler = Reconciler(resources.orders, resources.dlq, worker)

    async def deliver(self, kind: EventType, message: ReceivedMessage, malformed: bool) -> None:
        """What the consumer loop does with one delivery: handle it. A malformed message must
        be refused as one the loop dead-letters, before it changes anything."""
        if not malformed:
            await self._handlers[kind](message)
            return
        with pytest.raises(InvalidMessage) as refused:
            await self._handlers[kind](message)
        assert decide(refused.value).action is Action.DEAD_LETTER

    async def reconcile(self) -> None:
        report = await self._reconciler.run_pass()
        assert report.failed == 0

    async def in_order(self, stream: Stream) -> None:
        """The canonical run: every message once, in publish order, then one DLQ pass."""
        for delivery in stream.messages:
            await self.deliver(*delivery)
        await self.reconcile()

    async def play(self, steps: list[tuple[list[Delivery], int]]) -> None:
        """Each step: deliveries handled concurrently, alongside ``passes`` DLQ passes (0 to 2,
        as from several workers); then the pass the DLQ worker would run next."""
        for deliveries, passes in steps:
            await asyncio.gather(
                *(self.deliver(*delivery) for delivery in deliveries),
                *(self.reconcile() for _ in range(passes)),
            )
        await self.reconcile()


async def dump(resources: Resources, stream: Stream) -> tuple[list[Any], list[Any]]:
    """The stream's rows in both tables, by key."""
    c = resources.settings.cassandra
    rows = await resources.cql.create_prepared(
        f"SELECT {ROW_COLUMNS} FROM {c.keyspace}.{c.orders_table} WHERE order_id = ?"
    )
    parked = await resources.cql.create_prepared(
        f"SELECT {DLQ_COLUMNS} FROM {c.keyspace}.{c.dlq_table} WHERE order_id = ?"
    )
    found: tuple[list[Any], list[Any]] = ([], [])
    for order_id in sorted(stream.order_ids + stream.orphan_ids):
        for prepared, into in ((rows, found[0]), (parked, found[1])):
            result = await resources.cql.execute(prepared.bind([order_id]))
            into.extend(row.as_dict() for row in result)  # parked rows come by payment_id
    return found
