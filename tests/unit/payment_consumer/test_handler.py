"""Order and payment handlers on fake tables: joins, parking, idempotence, version order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_order_consumer.handler import OrderHandler
from ecom_payment_consumer.handler import PaymentHandler
from ecom_shared.cassandra.store import ParkedPayment
from ecom_shared.completion import complete_parked
from ecom_shared.errors import InvalidMessage
from ecom_shared.events import EventType, Order, Payment, parse_event
from ecom_shared.observability.metrics import new_registry
from ecom_shared.unknown_fields import MAX_NAMES, OTHER, UnknownFields
from tests.fakes import FakeDlq, FakeOrders, FakePublisher, received
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


async def test_bad_payment_raises_invalid_message() -> None:
    _, on_payment, _, _, _ = handlers()
    with pytest.raises(InvalidMessage):
        await on_payment(received(b"{broken"))


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


def unknown_counts(registry: object) -> dict[tuple[str, str], float]:
    found = {}
    for metric in registry.collect():  # type: ignore[attr-defined]
        for sample in metric.samples:
            if sample.name == "ecom_unknown_fields_total":
                found[(sample.labels["event_type"], sample.labels["field"])] = sample.value
    return found


async def test_unknown_fields_are_counted_by_name_and_the_message_is_handled() -> None:
    registry = new_registry()
    orders, dlq = FakeOrders(), FakeDlq()
    on_order = OrderHandler(
        orders, dlq, clock=lambda: NOW, unknown_fields=UnknownFields(registry, EventType.ORDER)
    )
    await on_order(received(body(ORDER, coupon="FREE")))
    await on_order(received(body(ORDER, coupon="HALF", gift=True)))
    assert 1 in orders.orders
    assert unknown_counts(registry) == {("order", "coupon"): 2, ("order", "gift"): 1}


def test_unknown_field_names_get_a_bounded_number_of_labels() -> None:
    registry = new_registry()
    unknown = UnknownFields(registry, EventType.PAYMENT)
    for n in range(MAX_NAMES + 25):
        unknown.record(parse_event(Payment, body(PAYMENT, **{f"field_{n}": n}), None))
    counts = unknown_counts(registry)
    assert len(counts) == MAX_NAMES + 1
    assert counts[("payment", OTHER)] == 25


# Versions of one payment: the newer wins on every path.

PAID_AT = datetime(2023, 9, 1, 17, 1, 30, tzinfo=UTC)  # test_events.PAYMENT's time
PENDING = body(PAYMENT, payment_status="Pending", card_last_four="1111")
COMPLETED = body(PAYMENT, payment_status="Completed", card_last_four="2222")


def at(seconds: int) -> datetime:
    """A publish time this many seconds after the payment time."""
    return PAID_AT + timedelta(seconds=seconds)


def stored(orders: FakeOrders) -> tuple[str, str | None]:
    payment: Payment = orders.payments[1][1]
    return payment.payment_status, payment.card_last_four


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


@pytest.mark.parametrize("joiner", ["order", "worker"])
async def test_of_two_versions_parked_newer_first_the_join_stores_the_newer(joiner: str) -> None:
    on_order, on_payment, orders, dlq, _ = handlers()
    await on_payment(received(COMPLETED, publish_time=at(9)))
    await on_payment(received(PENDING, publish_time=at(5)))  # older, delivered after
    assert [p.payment.payment_status for p in dlq.rows.values() if p.payment] == ["Completed"]
    if joiner == "order":
        await on_order(received(body(ORDER)))
    else:
        await orders.upsert_order(parse_event(Order, body(ORDER), None), 1, NOW)
        await Reconciler(orders, dlq, WorkerSettings()).run_pass()
    assert stored(orders) == ("Completed", "2222")
    assert dlq.rows == {}


async def test_a_join_deletes_only_the_version_it_stored() -> None:
    _, on_payment, orders, dlq, _ = handlers()
    await on_payment(received(PENDING, publish_time=at(5)))
    [stale] = (await dlq.parked_for_many([1]))[1]
    await on_payment(received(COMPLETED, publish_time=at(9)))  # parked while the join runs
    await orders.upsert_order(parse_event(Order, body(ORDER), None), 1, NOW)
    await complete_parked(orders, dlq, stale, "dlq", NOW)
    assert [p.payment.payment_status for p in dlq.rows.values() if p.payment] == ["Completed"]
    await Reconciler(orders, dlq, WorkerSettings()).run_pass()
    assert stored(orders) == ("Completed", "2222")
    assert dlq.rows == {}


async def test_a_version_deleted_by_its_join_does_not_come_back_when_redelivered() -> None:
    on_order, on_payment, orders, dlq, publisher = handlers()
    parked = received(PENDING, publish_time=at(5))
    await on_payment(parked)
    await on_order(received(body(ORDER)))
    await dlq.park(parse_event(Payment, PENDING, None), at(5), NOW)  # a late duplicate insert
    assert dlq.rows == {}
    assert stored(orders) == ("Pending", "1111")
    assert len(publisher.sent) == 1


# Event times after the publish time.


async def test_an_order_dated_far_after_its_publish_time_is_refused_and_not_written() -> None:
    on_order, _, orders, _, _ = handlers()
    locked = body(ORDER, updated_at="2099-01-01T00:00:00Z")
    with pytest.raises(InvalidMessage) as refused:
        await on_order(received(locked, publish_time=NOW))
    assert refused.value.reason == "invalid_value"
    assert orders.orders == {}


async def test_a_payment_dated_far_after_its_publish_time_is_refused_and_not_parked() -> None:
    _, on_payment, orders, dlq, publisher = handlers()
    future = body(PAYMENT, payment_datetime="2026-06-01T02:00:00Z")
    with pytest.raises(InvalidMessage):
        await on_payment(received(future, publish_time=NOW))
    assert (orders.payments, dlq.rows, publisher.sent) == ({}, {}, [])


async def test_the_margin_comes_from_the_handlers_settings() -> None:
    orders, dlq = FakeOrders(), FakeDlq()
    strict = OrderHandler(orders, dlq, max_ahead=timedelta(0))
    lenient = OrderHandler(orders, dlq, max_ahead=timedelta(hours=2))
    ahead = body(ORDER, updated_at="2026-06-01T01:30:00Z")
    with pytest.raises(InvalidMessage):
        await strict(received(ahead, publish_time=NOW))
    await lenient(received(ahead, publish_time=NOW))
    assert 1 in orders.orders
