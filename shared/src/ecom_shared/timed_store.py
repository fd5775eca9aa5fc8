"""The store ports with a latency histogram around every Cassandra request they make.

Decorators of :class:`~ecom_shared.store.OrdersTable` and :class:`~ecom_shared.store.DlqTable`,
so handlers, the worker and the unit tests' fakes stay unaware of metrics. Each observation
costs two clock reads and one histogram update (measured in ``scripts/bench_metrics.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from time import perf_counter

from ecom_shared.events import Order, Payment
from ecom_shared.metrics import StoreMetrics
from ecom_shared.store import DlqTable, OrdersTable, ParkedPayment, PaymentSource, UnreadableRow


class TimedOrders:
    def __init__(self, inner: OrdersTable, metrics: StoreMetrics) -> None:
        self._inner = inner
        self._upsert = metrics.seconds.labels("upsert_order")
        self._exists = metrics.seconds.labels("order_exists")
        self._pay = metrics.seconds.labels("set_payment")

    async def upsert_order(self, order: Order, version_micros: int, now: datetime) -> None:
        started = perf_counter()
        try:
            await self._inner.upsert_order(order, version_micros, now)
        finally:
            self._upsert.observe(perf_counter() - started)

    async def order_exists(self, order_id: int) -> bool:
        started = perf_counter()
        try:
            return await self._inner.order_exists(order_id)
        finally:
            self._exists.observe(perf_counter() - started)

    async def set_payment(
        self, payment: Payment, version_micros: int, source: PaymentSource, now: datetime
    ) -> None:
        started = perf_counter()
        try:
            await self._inner.set_payment(payment, version_micros, source, now)
        finally:
            self._pay.observe(perf_counter() - started)


class TimedDlq:
    """Times the row writes; a scan is paged and is measured as a whole by the pass duration."""

    def __init__(self, inner: DlqTable, metrics: StoreMetrics) -> None:
        self._inner = inner
        self._park = metrics.seconds.labels("dlq_park")
        self._attempt = metrics.seconds.labels("dlq_record_attempt")
        self._remove = metrics.seconds.labels("dlq_remove")
        self._lookup = metrics.seconds.labels("dlq_parked_for")

    async def park(self, payment: Payment, published_at: datetime, now: datetime) -> None:
        started = perf_counter()
        try:
            await self._inner.park(payment, published_at, now)
        finally:
            self._park.observe(perf_counter() - started)

    def scan(self, page_size: int, segments: int) -> AsyncIterator[ParkedPayment | UnreadableRow]:
        return self._inner.scan(page_size, segments)

    async def parked_for_many(self, order_ids: list[int]) -> dict[int, list[ParkedPayment]]:
        started = perf_counter()
        try:
            return await self._inner.parked_for_many(order_ids)
        finally:
            self._lookup.observe(perf_counter() - started)

    async def record_attempt(self, parked: ParkedPayment, now: datetime) -> None:
        started = perf_counter()
        try:
            await self._inner.record_attempt(parked, now)
        finally:
            self._attempt.observe(perf_counter() - started)

    async def remove(self, order_id: int, payment_id: int, version: int | None) -> None:
        started = perf_counter()
        try:
            await self._inner.remove(order_id, payment_id, version)
        finally:
            self._remove.observe(perf_counter() - started)
