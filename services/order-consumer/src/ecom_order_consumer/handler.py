"""What the order consumer does with one message."""

from __future__ import annotations

from datetime import timedelta

from ecom_shared.cassandra.store import DlqTable, OrdersTable, ParkedPayment
from ecom_shared.clock import Clock, utc_now
from ecom_shared.completion import complete_parked
from ecom_shared.events import MAX_AHEAD, Order
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.reading import read_event
from ecom_shared.runtime.coalesce import Coalescer
from ecom_shared.runtime.faults import NO_CRASH, CrashHook
from ecom_shared.unknown_fields import UnknownFields
from ecom_shared.versions import order_version_micros


class OrderHandler:
    """Validate the order, write its columns, then complete any payment parked for it.

    Only order columns are written, so a redelivered or re-emitted order never erases a
    payment; the write timestamp is the order's ``updated_at`` (else the message's publish
    time) with a tie-breaker from the body (:func:`~ecom_shared.versions.order_version_micros`),
    so the newest version wins whatever the delivery order and a row is always one whole
    version. Event times more than ``max_ahead`` after the publish time are refused.

    A payment that came first waits in the DLQ table. Looking for it here (after the order is
    written; the looks of concurrent orders share one ``IN`` read) joins it at once instead of
    on the DLQ worker's next pass. The payment consumer checks for the order again after
    parking, so whichever of the two writes lands second sees the other's: a payment is left
    to the worker only when a write or read here fails, and then the message is retried.
    """

    def __init__(
        self,
        orders: OrdersTable,
        dlq: DlqTable,
        clock: Clock = utc_now,
        *,
        unknown_fields: UnknownFields | None = None,
        max_ahead: timedelta = MAX_AHEAD,
        crash: CrashHook = NO_CRASH,
    ) -> None:
        self._orders = orders
        self._max_ahead = max_ahead
        self._unknown_fields = unknown_fields
        self._dlq = dlq
        self._clock = clock
        self._crash = crash  # the fault-injection tests' hook (ecom_shared.runtime.faults)
        # Hundreds of orders are handled at once: their looks share one IN read per
        # millisecond (one read per order would cost Cassandra about as much as the write).
        self._parked: Coalescer[int, list[ParkedPayment]] = Coalescer(dlq.parked_for_many, list)

    async def __call__(self, message: ReceivedMessage) -> None:
        order = read_event(Order, message, self._max_ahead, self._unknown_fields)
        version = order_version_micros(order, message.publish_time, message.data or b"")
        now = self._clock()
        await self._orders.upsert_order(order, version, now)
        for parked in await self._parked.get(order.order_id):
            await complete_parked(self._orders, self._dlq, parked, "order", now, crash=self._crash)
