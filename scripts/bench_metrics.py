"""Micro-benchmark of the metric hooks' cost per message (run by hand, not a test).

    .venv/bin/python scripts/bench_metrics.py

Measures, on uvloop, what the hot path pays: the consumer loop's per-batch counters (spread
over a 1,000-message batch), the timed store decorator around a store call that does nothing,
and the bare prometheus-client operations; and compares them with the budget of one message at
9k messages/s on one core (about 111 us).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import uvloop
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from ecom_devtools.bench.micro import APPS_ORDER, per_call_us
from ecom_shared.events import Order, Payment, parse_event
from ecom_shared.metrics import ConsumerMetrics, StoreMetrics, new_registry
from ecom_shared.store import PaymentSource
from ecom_shared.timed_store import TimedOrders

ROUNDS = 200_000
BATCH = 1000
BUDGET_US = 1e6 / 9000


async def per_await_us(work: Callable[[], Awaitable[object]], rounds: int = ROUNDS) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            await work()
        best = min(best, time.perf_counter() - started)
    return best / rounds * 1e6


class NoopOrders:
    async def upsert_order(self, order: Order, version_micros: int, now: datetime) -> None:
        return None

    async def order_exists(self, order_id: int) -> bool:
        return True

    async def set_payment(
        self, payment: Payment, version_micros: int, source: PaymentSource, now: datetime
    ) -> None:
        return None


async def main() -> None:
    registry = new_registry()
    consumer = ConsumerMetrics(registry, "orders-sub")
    store = StoreMetrics(registry)
    child = store.seconds.labels("upsert_order")
    stock = Histogram("stock", "stock", ["operation"], registry=CollectorRegistry()).labels("x")

    def batch_hooks() -> None:  # what _process and _settle do once per batch
        consumer.received.inc(BATCH)
        consumer.in_flight.inc(BATCH)
        consumer.acked.inc(BATCH)
        consumer.in_flight.dec(BATCH)

    order = parse_event(Order, APPS_ORDER, None)  # the apps' example order
    now = datetime.now(UTC)
    raw, timed = NoopOrders(), TimedOrders(NoopOrders(), store)
    results = {
        "counter inc (bound child)": per_call_us(consumer.acked.inc),
        "LoopHistogram observe (ours)": per_call_us(lambda: child.observe(0.001)),
        "prometheus-client Histogram observe": per_call_us(lambda: stock.observe(0.001)),
        "labels() lookup + inc (failure path)": per_call_us(lambda: consumer.retried("x")),
        "batch hooks per message (1,000/batch)": per_call_us(batch_hooks, 20_000) / BATCH,
        "store call, bare": await per_await_us(lambda: raw.upsert_order(order, 1, now)),
        "store call, timed": await per_await_us(lambda: timed.upsert_order(order, 1, now)),
    }
    for name, us in results.items():
        print(f"{name:40} {us:8.3f} us")
    added = results["store call, timed"] - results["store call, bare"]
    per_message = added * 2 + results["batch hooks per message (1,000/batch)"]
    print(f"{'timed decorator adds':40} {added:8.3f} us per store call")
    print(
        f"per message (2 store calls, as a payment): {per_message:.2f} us = "
        f"{per_message / BUDGET_US:.2%} of {BUDGET_US:.0f} us (9k msg/s on one core)"
    )
    render_ms = per_call_us(lambda: generate_latest(registry), 200) / 1000
    print(f"one /metrics render: {render_ms:.2f} ms, {len(generate_latest(registry))} bytes")


if __name__ == "__main__":
    uvloop.run(main())
