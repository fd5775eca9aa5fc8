"""Completing a parked payment: of two versions the newer is stored, and a join deletes only
the version it stored, whichever path (order consumer, DLQ worker) joins it."""

from __future__ import annotations

import pytest

from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_shared.completion import complete_parked
from ecom_shared.events import Order, Payment, parse_event
from tests.fakes import received
from tests.handlers import COMPLETED, NOW, ORDER, PENDING, at, body, handlers, stored


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
