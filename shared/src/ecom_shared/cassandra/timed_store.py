"""The store ports with a latency histogram around every Cassandra request they make.

Decorators of :class:`~ecom_shared.cassandra.store.OrdersTable` and
:class:`~ecom_shared.cassandra.store.DlqTable`, so handlers, the worker and the unit tests'
fakes stay unaware of metrics. Each observation
costs two clock reads and one histogram update (``python -m ecom_devtools.bench.micro`` times it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from time import perf_counter
from typing import TypeVar

from ecom_shared.cassandra.store import (
    DlqTable,
    OrdersTable,
    ParkedPayment,
    PaymentSource,
    UnreadableRow,
)
from ecom_shared.events import Order, Payment
from ecom_shared.observability.metrics import LoopSeries, StoreMetrics

T = TypeVar("T")


async def _timed(series: LoopSeries, request: Awaitable[T]) -> T:
    """Await ``request`` and add its duration to ``series``, whether it succeeded or raised."""
    started = perf_counter()
    try:
        return await request
    finally:
        series.observe(perf_counter() - started)


class TimedOrders:
    def __init__(self, inner: OrdersTable, metrics: StoreMetrics) -> None:
        self._inner = inner
        self._upsert = metrics.seconds.labels("upsert_order")
        self._exists = metrics.seconds.labels("order_exists")
        self._pay = metrics.seconds.labels("set_payment")

    async def upsert_order(self, order: Order, version_micros: int, now: datetime) -> None:
        await _timed(self._upsert, self._inner.upsert_order(order, version_micros, now))

    async def order_exists(self, order_id: int) -> bool:
        return await _timed(self._exists, self._inner.order_exists(order_id))

    async def set_payment(
        self, payment: Payment, version_micros: int, source: PaymentSource, now: datetime
    ) -> None:
        await _timed(self._pay, self._inner.set_payment(payment, version_micros, source, now))


class TimedDlq:
    """Times the row writes; a scan is paged and is measured as a whole by the pass duration."""

    def __init__(self, inner: DlqTable, metrics: StoreMetrics) -> None:
        self._inner = inner
        self._park = metrics.seconds.labels("dlq_park")
        self._attempt = metrics.seconds.labels("dlq_record_attempt")
        self._remove = metrics.seconds.labels("dlq_remove")
        self._lookup = metrics.seconds.labels("dlq_parked_for")

    async def park(self, payment: Payment, published_at: datetime, now: datetime) -> None:
        await _timed(self._park, self._inner.park(payment, published_at, now))

    def scan(self, page_size: int, segments: int) -> AsyncIterator[ParkedPayment | UnreadableRow]:
        return self._inner.scan(page_size, segments)

    async def parked_for_many(self, order_ids: list[int]) -> dict[int, list[ParkedPayment]]:
        return await _timed(self._lookup, self._inner.parked_for_many(order_ids))

    async def record_attempt(self, parked: ParkedPayment, now: datetime) -> None:
        await _timed(self._attempt, self._inner.record_attempt(parked, now))

    async def remove(self, order_id: int, payment_id: int, version: int | None) -> None:
        await _timed(self._remove, self._inner.remove(order_id, payment_id, version))
