"""The order handler on fake tables: version order, and completing a payment parked before its
order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecom_order_consumer.handler import OrderHandler
from ecom_shared.cassandra.store import ParkedPayment
from ecom_shared.errors import InvalidMessage
from tests.fakes import FakeDlq, FakeOrders, received
from tests.handlers import LATER, NOW, ORDER, PAYMENT, body, handlers


async def test_older_order_version_delivered_late_does_not_win() -> None:
    on_order, _, orders, _, _ = handlers()
    newer = body(ORDER, order_status="Shipped", updated_at="2026-01-02T00:00:00Z")
    older = body(ORDER, order_status="Pending", updated_at="2026-01-01T00:00:00Z")
    await on_order(received(newer, publish_time=LATER))
    await on_order(received(older, publish_time=LATER))
    assert orders.orders[1][1].order_status == "Shipped"


async def test_without_updated_at_the_version_published_last_wins() -> None:
    on_order, _, orders, _, _ = handlers()
    first = datetime(2026, 1, 1, 10, tzinfo=UTC)
    later = body(ORDER, order_status="Delivered")
    earlier = body(ORDER, order_status="Pending")
    await on_order(received(later, publish_time=first.replace(second=1)))
    await on_order(received(earlier, publish_time=first))  # delivered last, published first
    assert orders.orders[1][1].order_status == "Delivered"


async def test_an_order_completes_the_payment_parked_before_it_at_once() -> None:
    on_order, on_payment, orders, dlq, publisher = handlers()
    await on_payment(received(body(PAYMENT)))
    await on_order(received(body(ORDER)))
    assert orders.payments[1][1].payment_id == 10
    assert orders.payments[1][2] == "order"
    assert dlq.rows == {}
    assert len(publisher.sent) == 1  # only the announcement made when it was parked


async def test_an_order_clears_a_stub_left_in_the_dlq_without_writing_a_payment() -> None:
    on_order, _, orders, dlq, _ = handlers()
    dlq.rows[(1, 10)] = ParkedPayment(1, 10, None, None, 1)
    await on_order(received(body(ORDER)))
    assert orders.payments == {}
    assert dlq.rows == {}


async def test_an_order_whose_dlq_look_fails_is_retried_and_loses_nothing() -> None:
    _, on_payment, orders, dlq, _ = handlers()
    await on_payment(received(body(PAYMENT)))

    async def unavailable(order_ids: list[int]) -> dict[int, list[ParkedPayment]]:
        raise TimeoutError(order_ids)

    dlq.parked_for_many = unavailable  # type: ignore[method-assign]
    on_order = OrderHandler(orders, dlq, clock=lambda: NOW)
    with pytest.raises(TimeoutError):
        await on_order(received(body(ORDER)))
    assert 1 in orders.orders  # the order is written; its payment still waits, parked
    assert list(dlq.rows) == [(1, 10)]


async def test_an_order_dated_far_after_its_publish_time_is_refused_and_not_written() -> None:
    on_order, _, orders, _, _ = handlers()
    locked = body(ORDER, updated_at="2099-01-01T00:00:00Z")
    with pytest.raises(InvalidMessage) as refused:
        await on_order(received(locked, publish_time=NOW))
    assert refused.value.reason == "invalid_value"
    assert orders.orders == {}


async def test_the_margin_comes_from_the_handlers_settings() -> None:
    orders, dlq = FakeOrders(), FakeDlq()
    strict = OrderHandler(orders, dlq, max_ahead=timedelta(0))
    lenient = OrderHandler(orders, dlq, max_ahead=timedelta(hours=2))
    ahead = body(ORDER, updated_at="2026-06-01T01:30:00Z")
    with pytest.raises(InvalidMessage):
        await strict(received(ahead, publish_time=NOW))
    await lenient(received(ahead, publish_time=NOW))
    assert 1 in orders.orders
