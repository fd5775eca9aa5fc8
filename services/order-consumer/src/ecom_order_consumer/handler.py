"""What the order consumer does with one message."""

from __future__ import annotations

from ecom_shared.clock import Clock, utc_now
from ecom_shared.events import Order, order_version_micros, parse_event
from ecom_shared.pubsub import ReceivedMessage
from ecom_shared.store import OrdersTable


class OrderHandler:
    """Validate the order and write its columns, with the event's time as write timestamp.

    Only order columns are written, so a redelivered or re-emitted order never erases a
    payment; the write timestamp is the order's ``updated_at`` (else the message's publish
    time), so the newest version wins whatever the delivery order.
    """

    def __init__(self, orders: OrdersTable, clock: Clock = utc_now) -> None:
        self._orders = orders
        self._clock = clock

    async def __call__(self, message: ReceivedMessage) -> None:
        order = parse_event(Order, message.data, message.attributes)
        version = order_version_micros(order, message.publish_time)
        await self._orders.upsert_order(order, version, self._clock())
