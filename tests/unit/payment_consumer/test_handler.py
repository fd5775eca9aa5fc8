"""The payment handler on fake tables: joins, parking and its announcement, idempotence,
version order, and the count of parked payments."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from ecom_payment_consumer.handler import PaymentHandler
from ecom_shared.errors import InvalidMessage
from ecom_shared.events import Order, Payment, parse_event
from ecom_shared.observability.metrics import PaymentMetrics
from tests.fakes import FakeDlq, FakeOrders, FakePublisher, received
from tests.handlers import COMPLETED, NOW, ORDER, PAYMENT, PENDING, at, body, handlers, stored
from tests.unit.shared.observability.test_metrics import value


async def test_payment_joins_an_existing_order() -> None:
    on_order, on_payment, orders, dlq, publisher = handlers()
    await on_order(received(body(ORDER)))
    await on_payment(received(body(PAYMENT)))
    assert orders.payments[1][2] == "stream"
    assert dlq.rows == {}
    assert publisher.sent == []


async def test_payment_before_its_order_is_parked_and_announced() -> None:
    _, on_payment, orders, dlq, publisher = handlers()
    await on_payment(received(body(PAYMENT)))
    assert list(dlq.rows) == [(1, 10)]
    [announced] = publisher.on("dlq-payments")
    assert json.loads(announced.data)["payment_id"] == 10
    assert announced.attributes["parked_reason"] == "order_not_found"
    assert orders.payments == {}


async def test_redelivered_payment_is_idempotent() -> None:
    _, on_payment, _, dlq, publisher = handlers()
    for _ in range(3):
        await on_payment(received(body(PAYMENT)))
    assert len(dlq.rows) == 1  # keyed by (order_id, payment_id)
    assert len(publisher.sent) == 3  # announced each time; consumers of the topic dedupe by id


async def test_bad_payment_raises_invalid_message() -> None:
    _, on_payment, _, _, _ = handlers()
    with pytest.raises(InvalidMessage):
        await on_payment(received(b"{broken"))


class OrderLandsWhileParking(FakeOrders):
    """The order is written by another process between the payment's first look and its park."""

    def __init__(self, order: Order) -> None:
        super().__init__()
        self._order = order
        self.looks = 0

    async def order_exists(self, order_id: int) -> bool:
        self.looks += 1
        found = await super().order_exists(order_id)
        if self.looks == 1:
            await self.upsert_order(self._order, 1, NOW)
        return found


async def test_a_payment_parked_while_its_order_lands_is_joined_by_the_payment_consumer() -> None:
    order = parse_event(Order, body(ORDER), None)
    orders, dlq, publisher = OrderLandsWhileParking(order), FakeDlq(), FakePublisher()
    on_payment = PaymentHandler(orders, dlq, publisher, "dlq-payments", clock=lambda: NOW)
    await on_payment(received(body(PAYMENT)))
    assert orders.looks == 2
    joined: Payment = orders.payments[1][1]
    assert (joined.payment_id, orders.payments[1][2]) == (10, "stream")
    assert dlq.rows == {}
    assert publisher.sent == []  # never announced: it did not stay parked


async def test_the_announcement_carries_the_payment_as_the_app_sent_it() -> None:
    _, on_payment, _, _, publisher = handlers()
    sent = body(PAYMENT, installments=3).replace(b", ", b",  ")  # spacing and an unknown field
    message = received(sent)
    await on_payment(message)
    [announced] = publisher.on("dlq-payments")
    assert announced.data == sent
    assert announced.attributes["source_message_id"] == message.message_id
    assert announced.attributes["event_type"] == "payment"


# Versions of one payment: the newer wins on every path.


@pytest.mark.parametrize("completed_first", [False, True])
async def test_a_status_change_that_keeps_the_payment_time_wins_on_the_stream(
    completed_first: bool,
) -> None:
    on_order, on_payment, orders, _, _ = handlers()
    await on_order(received(body(ORDER)))
    versions = [received(PENDING, publish_time=at(5)), received(COMPLETED, publish_time=at(9))]
    for message in reversed(versions) if completed_first else versions:
        await on_payment(message)
    assert stored(orders) == ("Completed", "2222")


# Event times after the publish time.


async def test_a_payment_dated_far_after_its_publish_time_is_refused_and_not_parked() -> None:
    _, on_payment, orders, dlq, publisher = handlers()
    future = body(PAYMENT, payment_datetime="2026-06-01T02:00:00Z")
    with pytest.raises(InvalidMessage):
        await on_payment(received(future, publish_time=NOW))
    assert (orders.payments, dlq.rows, publisher.sent) == ({}, {}, [])


async def test_parked_payments_are_counted() -> None:
    registry = CollectorRegistry()
    parked = PaymentMetrics(registry).parked
    handler = PaymentHandler(
        FakeOrders(), FakeDlq(), FakePublisher(), "dlq-payments", on_parked=parked.inc
    )
    await handler(received(body(PAYMENT, order_id=7)))
    assert value(registry, "ecom_payments_parked_total") == 1
