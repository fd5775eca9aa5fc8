"""The store ports with a latency histogram around every request, failed ones included."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from ecom_shared.cassandra.timed_store import TimedDlq, TimedOrders
from ecom_shared.errors import StoreUnavailable
from ecom_shared.events import Order, parse_event
from ecom_shared.observability.metrics import StoreMetrics
from tests.fakes import FakeDlq, FakeOrders
from tests.unit.dlq_worker.test_reconcile import NOW, payment
from tests.unit.shared.observability.test_metrics import value
from tests.unit.shared.test_events import ORDER, body


async def test_store_latency_is_observed_per_operation_failures_included() -> None:
    registry = CollectorRegistry()
    metrics = StoreMetrics(registry)
    fake = FakeOrders()
    orders, dlq = TimedOrders(fake, metrics), TimedDlq(FakeDlq(), metrics)
    await orders.upsert_order(parse_event(Order, body(ORDER, order_id=1), None), 1, NOW)
    assert await orders.order_exists(1)
    await dlq.park(payment(2, 20), NOW, NOW)
    fake.fail_with = StoreUnavailable("timed out")
    with pytest.raises(StoreUnavailable):
        await orders.order_exists(1)
    name = "ecom_cassandra_request_duration_seconds_count"
    assert value(registry, name, {"operation": "upsert_order"}) == 1
    assert value(registry, name, {"operation": "order_exists"}) == 2
    assert value(registry, name, {"operation": "dlq_park"}) == 1
    assert [p.payment_id async for p in dlq.scan(10, 1)] == [20]
