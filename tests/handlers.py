"""The order and payment handlers on fake tables, and the events their tests send (for the
handler, completion and DLQ worker unit tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ecom_order_consumer.handler import OrderHandler
from ecom_payment_consumer.handler import PaymentHandler
from ecom_shared.events import Payment
from tests.fakes import FakeDlq, FakeOrders, FakePublisher
from tests.unit.shared import test_events

ORDER = {**test_events.ORDER, "order_id": 1}
PAYMENT = {**test_events.PAYMENT, "order_id": 1, "payment_id": 10}
body = test_events.body
NOW = datetime(2026, 6, 1, tzinfo=UTC)
LATER = datetime(2026, 1, 3, tzinfo=UTC)  # a publish time after the update times below


def handlers() -> tuple[OrderHandler, PaymentHandler, FakeOrders, FakeDlq, FakePublisher]:
    orders, dlq, publisher = FakeOrders(), FakeDlq(), FakePublisher()
    return (
        OrderHandler(orders, dlq, clock=lambda: NOW),
        PaymentHandler(orders, dlq, publisher, "dlq-payments", clock=lambda: NOW),
        orders,
        dlq,
        publisher,
    )


PAID_AT = datetime(2023, 9, 1, 17, 1, 30, tzinfo=UTC)  # test_events.PAYMENT's time
PENDING = body(PAYMENT, payment_status="Pending", card_last_four="1111")
COMPLETED = body(PAYMENT, payment_status="Completed", card_last_four="2222")


def at(seconds: int) -> datetime:
    """A publish time this many seconds after the payment time."""
    return PAID_AT + timedelta(seconds=seconds)


def stored(orders: FakeOrders) -> tuple[str, str | None]:
    payment: Payment = orders.payments[1][1]
    return payment.payment_status, payment.card_last_four
