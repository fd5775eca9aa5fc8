"""What the payment consumer does with one message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ecom_shared.cassandra.store import DlqTable, OrdersTable, ParkedPayment
from ecom_shared.clock import Clock, utc_now
from ecom_shared.completion import complete_parked
from ecom_shared.events import (
    EVENT_TYPE_ATTRIBUTE,
    MAX_AHEAD,
    EventType,
    Payment,
)
from ecom_shared.pubsub.client import OutgoingMessage, Publisher, ReceivedMessage
from ecom_shared.reading import read_event
from ecom_shared.runtime.faults import NO_CRASH, CrashHook, CrashPoint
from ecom_shared.unknown_fields import UnknownFields
from ecom_shared.versions import payment_version_micros


class PaymentHandler:
    """Join the payment to its order's row, or park it and announce it on ``dlq-payments``.

    Returns (so the message is acked) only once the row update, or both the DLQ insert and the
    announcement, have succeeded. After parking, the order is looked for once more: the order
    consumer looks for parked payments after writing its order, so of two racing writes the
    later one always sees the earlier (and the DLQ worker's pass remains the safety net).
    ``on_parked`` is called once a payment stays parked and is announced (the service counts
    it in a metric). ``crash`` is the fault-injection tests' hook
    (:mod:`ecom_shared.runtime.faults`), off otherwise.

    Every write of the payment (its row, its DLQ insert, the delete after a join) carries the
    version's timestamp (:func:`~ecom_shared.versions.payment_version_micros`, from the payment
    and the message's publish time), so of two versions the newer wins on every path and in
    any delivery order. Event times more than ``max_ahead`` after the publish time are
    refused.
    """

    def __init__(
        self,
        orders: OrdersTable,
        dlq: DlqTable,
        publisher: Publisher,
        dlq_topic: str,
        clock: Clock = utc_now,
        *,
        on_parked: Callable[[], None] | None = None,
        unknown_fields: UnknownFields | None = None,
        max_ahead: timedelta = MAX_AHEAD,
        crash: CrashHook = NO_CRASH,
    ) -> None:
        self._unknown_fields = unknown_fields
        self._max_ahead = max_ahead
        self._orders = orders
        self._dlq = dlq
        self._publisher = publisher
        self._dlq_topic = dlq_topic
        self._clock = clock
        self._on_parked = on_parked
        self._crash = crash

    async def __call__(self, message: ReceivedMessage) -> None:
        payment = read_event(Payment, message, self._max_ahead, self._unknown_fields)
        version = payment_version_micros(payment, message.publish_time)
        now = self._clock()
        if await self._orders.order_exists(payment.order_id):
            await self._orders.set_payment(payment, version, "stream", now)
            return
        await self._dlq.park(payment, message.publish_time, now)
        self._crash.reached(CrashPoint.AFTER_PARK_BEFORE_ACK)
        if await self._orders.order_exists(payment.order_id):
            # The order landed meanwhile, and the order consumer may have looked for parked
            # payments before this one was parked: join it here rather than leave it waiting.
            parked = ParkedPayment(
                payment.order_id, payment.payment_id, payment, now, 0, message.publish_time
            )
            await complete_parked(self._orders, self._dlq, parked, "stream", now, crash=self._crash)
            return
        await self._publisher.publish(self._dlq_topic, [_announcement(message, now)])
        if self._on_parked is not None:
            self._on_parked()


def _announcement(message: ReceivedMessage, parked_at: datetime) -> OutgoingMessage:
    """The payment's body as the app sent it, with why and when it was parked."""
    attributes = {
        EVENT_TYPE_ATTRIBUTE: EventType.PAYMENT.value,
        "parked_reason": "order_not_found",
        "parked_at": parked_at.isoformat(),
        "source_message_id": message.message_id,
    }
    return OutgoingMessage(data=message.data or b"", attributes=attributes)
