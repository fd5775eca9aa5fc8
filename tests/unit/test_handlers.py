"""Order and payment handlers on fake tables: joins, parking, idempotence, version order."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ecom_order_consumer.handler import OrderHandler
from ecom_payment_consumer.handler import PaymentHandler
from ecom_shared.errors import InvalidMessage
from tests.fakes import FakeDlq, FakeOrders, FakePublisher, received
from tests.unit.test_events import ORDER, PAYMENT, body

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def handlers() -> tuple[OrderHandler, PaymentHandler, FakeOrders, FakeDlq, FakePublisher]:
    orders, dlq, publisher = FakeOrders(), FakeDlq(), FakePublisher()
    return (
        OrderHandler(orders, clock=lambda: NOW),
        PaymentHandler(orders, dlq, publisher, "dlq-payments", clock=lambda: NOW),
        orders,
        dlq,
        publisher,
    )


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


async def test_older_order_version_delivered_late_does_not_win() -> None:
    on_order, _, orders, _, _ = handlers()
    newer = body(ORDER, order_status="shipped", updated_at="2026-01-02T00:00:00Z")
    older = body(ORDER, order_status="pending", updated_at="2026-01-01T00:00:00Z")
    await on_order(received(newer))
    await on_order(received(older))
    assert orders.orders[1][1].order_status == "shipped"


async def test_bad_payment_raises_invalid_message() -> None:
    _, on_payment, _, _, _ = handlers()
    with pytest.raises(InvalidMessage):
        await on_payment(received(b"{broken"))
