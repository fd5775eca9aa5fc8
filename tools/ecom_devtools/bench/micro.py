"""Per-message costs of the consumers' Python path, one step at a time (no I/O).

``python -m ecom_devtools.bench.micro`` times each step the order and payment consumers take
for one message, outside any event loop, with CPU time (``time.process_time``) so that other
processes on a shared machine inflate the figures less. The steps are the product's own
functions where they exist, so a change to them shows up here. The messages are the apps'
example order and payment (:data:`APPS_ORDER`, :data:`APPS_PAYMENT`), published with no
attributes.

Then it times what the metrics add to that path: the consumer loop's per-batch counters
(spread over a batch of :data:`BATCH` messages), a latency observation, the timed store
decorator around a store call that does nothing (on uvloop, as the services run), and one
``/metrics`` render.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import jiter
import structlog
import uvloop
from gcloud.aio.pubsub import SubscriberMessage
from gcloud.aio.pubsub.subscriber_message import parse_publish_time
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from ecom_shared.cassandra.cqltypes import decimal_to_blob
from ecom_shared.cassandra.store import PaymentSource
from ecom_shared.cassandra.timed_store import TimedOrders
from ecom_shared.clock import as_utc, from_millis
from ecom_shared.events import Order, Payment, check_event_times, parse_event
from ecom_shared.observability.metrics import ConsumerMetrics, StoreMetrics, new_registry
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.versions import order_version_micros

_REPEAT = 20_000
BATCH = 1000
"""Messages per batch when per-batch counters are spread over messages."""
APPS_ORDER = (
    b'{"order_id": 17, "customer_id": 343, "item": "Laptop", "quantity": 3, '
    b'"price": 929.6972748780319, "shipping_address": "123 Main St, City A, Country", '
    b'"order_status": "Shipped", "creation_date": "2023-09-01"}'
)
APPS_PAYMENT = (
    b'{"payment_id": 1017, "order_id": 17, "payment_method": "Credit Card", '
    b'"card_last_four": "0017", "payment_status": "Completed", '
    b'"payment_datetime": "2023-09-01T17:01:30Z"}'
)


def per_call_us(step: Callable[[], object], repeat: int = _REPEAT) -> float:
    """CPU microseconds per call of ``step``, best of three rounds."""
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        for _ in range(repeat):
            step()
        best = min(best, time.process_time() - began)
    return round(best / repeat * 1e6, 2)


def _wire(data: bytes) -> dict[str, object]:
    """A pulled message as the REST API returns it (what gcloud-aio parses)."""
    return {
        "ackId": "projects/p/subscriptions/s:1234567890",
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": "1234567890",
            "publishTime": "2026-11-27T22:15:08.123Z",
        },
    }


def _received(raw: SubscriberMessage) -> ReceivedMessage:
    """What ``PubSubSubscription.pull`` builds from each gcloud-aio message."""
    return ReceivedMessage(
        ack_id=raw.ack_id,
        message_id=raw.message_id,
        publish_time=as_utc(raw.publish_time),
        data=raw.data,
        attributes=dict(raw.attributes or {}),
        delivery_attempt=raw.delivery_attempt,
    )


async def _gather_overhead(count: int) -> None:
    slots = asyncio.Semaphore(512)

    async def one() -> None:
        async with slots:
            await asyncio.sleep(0)

    await asyncio.gather(*(one() for _ in range(count)))


def _bind_unbind() -> None:
    structlog.contextvars.bind_contextvars(message_id="1")
    structlog.contextvars.unbind_contextvars("message_id")


def steps() -> dict[str, Callable[[], object]]:
    order_data, payment_data = APPS_ORDER, APPS_PAYMENT
    wire = _wire(order_data)
    raw = SubscriberMessage.from_repr(wire)
    attrs = dict(raw.attributes or {})  # none: the apps send none
    order = parse_event(Order, order_data, attrs)
    received = _received(raw)
    stamp = wire["message"]["publishTime"]  # type: ignore[index]
    return {
        "gcloud-aio SubscriberMessage.from_repr (base64, strptime)": lambda: (
            SubscriberMessage.from_repr(wire)
        ),
        "  of which parse_publish_time (strptime)": lambda: parse_publish_time(stamp),
        "  datetime.fromisoformat of the same text": lambda: datetime.fromisoformat(stamp),
        "ReceivedMessage from it (pubsub.pull)": lambda: _received(raw),
        "structlog bind+unbind message_id (consumer._handle)": _bind_unbind,
        "parse_event(Order): jiter, then pydantic model_validate": lambda: parse_event(
            Order, order_data, attrs
        ),
        "  jiter.from_json of the same body (decimal numbers)": lambda: jiter.from_json(
            order_data, float_mode="decimal"
        ),
        "  json.loads of the same body": lambda: json.loads(order_data),
        "parse_event(Payment)": lambda: parse_event(Payment, payment_data, attrs),
        "check_event_times(Order) (against its publish time)": lambda: check_event_times(
            order, received.publish_time
        ),
        "order_version_micros (its publish time, CRC-32 of the body)": lambda: order_version_micros(
            order, received.publish_time, order_data
        ),
        "decimal_to_blob(price)": lambda: decimal_to_blob(order.price),
        "datetime.now(UTC) (clock)": lambda: datetime.now(UTC),
        "from_millis (upsert_order version_at)": lambda: from_millis(1_700_000_000_000),
    }


class _NoopOrders:
    """A store that does nothing, so that only the decorator around it is timed."""

    async def upsert_order(self, order: Order, version_micros: int, now: datetime) -> None:
        del order, version_micros, now

    async def order_exists(self, order_id: int) -> bool:
        del order_id
        return True

    async def set_payment(
        self, payment: Payment, version_micros: int, source: PaymentSource, now: datetime
    ) -> None:
        del payment, version_micros, source, now


async def _awaited(work: Callable[[], Awaitable[object]], times: int) -> None:
    for _ in range(times):
        await work()


def per_await_us(loop: asyncio.AbstractEventLoop, work: Callable[[], Awaitable[object]]) -> float:
    """CPU microseconds per awaited call of ``work`` on ``loop``, timed 1,000 calls at a time."""
    return round(per_call_us(lambda: loop.run_until_complete(_awaited(work, 1000)), 20) / 1000, 3)


def metric_steps(loop: asyncio.AbstractEventLoop) -> dict[str, float]:
    """What the metric hooks cost, in CPU microseconds per call (or per message)."""
    registry = new_registry()
    consumer = ConsumerMetrics(registry, "orders-sub")
    store = StoreMetrics(registry)
    child = store.seconds.labels("upsert_order")
    stock = Histogram("stock", "stock", ["operation"], registry=CollectorRegistry()).labels("x")

    def batch_hooks() -> None:  # what the loop does once per batch
        consumer.received.inc(BATCH)
        consumer.in_flight.inc(BATCH)
        consumer.acked.inc(BATCH)
        consumer.in_flight.dec(BATCH)

    order = parse_event(Order, APPS_ORDER, None)
    now = datetime.now(UTC)
    bare, timed = _NoopOrders(), TimedOrders(_NoopOrders(), store)
    costs = {
        "counter inc (bound child)": per_call_us(consumer.acked.inc),
        "LoopHistogram observe (ours)": per_call_us(lambda: child.observe(0.001)),
        "prometheus-client Histogram observe": per_call_us(lambda: stock.observe(0.001)),
        "labels() lookup + inc (failure path)": per_call_us(lambda: consumer.retried("x")),
        f"batch hooks per message ({BATCH:,}/batch)": round(per_call_us(batch_hooks) / BATCH, 4),
        "store call, bare": per_await_us(loop, lambda: bare.upsert_order(order, 1, now)),
        "store call, timed": per_await_us(loop, lambda: timed.upsert_order(order, 1, now)),
    }
    costs["timed decorator adds per store call"] = round(
        costs["store call, timed"] - costs["store call, bare"], 3
    )
    costs["one /metrics render"] = per_call_us(lambda: generate_latest(registry), 200)
    return costs


def main() -> int:
    print(f"{'step':60} {'µs/message':>10}")
    for name, step in steps().items():
        print(f"{name:60} {per_call_us(step):>10}")
    loop = uvloop.new_event_loop()  # as the services run
    try:
        began = time.process_time()
        loop.run_until_complete(_gather_overhead(100_000))
        gather_us = round((time.process_time() - began) / 100_000 * 1e6, 2)
        label = "uvloop task + semaphore + gather per message"
        print(f"{label:60} {gather_us:>10}")
        print(f"\n{'metric hook':60} {'µs':>10}")
        for name, us in metric_steps(loop).items():
            print(f"{name:60} {us:>10}")
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
