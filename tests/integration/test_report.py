"""The report's figures on real Cassandra, against sums worked out here from the events sent:
while payments wait in the DLQ, again after the DLQ worker joined them, and (marked
``spark``) Spark's figures equal the embedded engine's, figure for figure."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import Any, Final

import pytest

from ecom_devtools.local.spark import connector_jars, require_pyspark
from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_report.build import build
from ecom_report.figures import Figures
from ecom_shared.clock import utc_now
from ecom_shared.events import Order, Payment, parse_event
from ecom_shared.runtime.resources import Resources
from ecom_shared.versions import order_version_micros, payment_version_micros

ORDERS: Final = 60
EARLY: Final = range(1, 31)
"""Orders whose payment came first: parked, then joined by the DLQ worker."""
LATE: Final = range(31, 46)
"""Orders whose payment came after them: joined on the stream."""
ORPHANS: Final = (901, 902, 903)
"""Payments whose order never comes."""
ITEMS: Final = ("Laptop", "Phone", "Café Crème", "phone")
METHODS: Final = ("Credit Card", "PayPal", "Klarna")
STATUSES: Final = ("Shipped", "Pending", "Delivered", "Returned")
AS_OF: Final = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sent:
    orders: dict[int, dict[str, Any]]
    payments: dict[int, dict[str, Any]]
    """By order id."""


def _json(fields: dict[str, Any]) -> bytes:
    """The apps' JSON, money as its exact digits (``Decimal`` written as a JSON number)."""
    text = json.dumps({k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items()})
    for key, value in fields.items():
        if isinstance(value, Decimal):
            text = text.replace(f'"{key}": "{value}"', f'"{key}": {value}')
    return text.encode()


def events(seed: int = 11) -> Sent:
    rng = Random(seed)
    orders = {}
    for order_id in range(1, ORDERS + 1):
        day = date(2026, 11, 28) + timedelta(days=order_id % 3)
        # Some creation times carry an offset whose UTC day is the day before.
        created: str = day.isoformat()
        if order_id % 4 == 0:
            created = f"{day.isoformat()}T01:30:00+05:00"
        orders[order_id] = {
            "order_id": order_id,
            "customer_id": rng.randrange(1, 20),
            "item": rng.choice(ITEMS),
            "quantity": rng.randrange(1, 5),
            "price": Decimal(rng.randrange(100, 150_000)) / 100,
            "shipping_address": "1 Main St",
            "order_status": rng.choice(STATUSES),
            "creation_date": created,
        }
    payments = {}
    for order_id in [*EARLY, *LATE, *ORPHANS]:
        day = date(2026, 11, 28) + timedelta(days=order_id % 3)
        payments[order_id] = {
            "payment_id": 1000 + order_id,
            "order_id": order_id,
            "payment_method": rng.choice(METHODS),
            "card_last_four": "4242",
            "payment_status": "Failed" if order_id % 7 == 0 else "Completed",
            "payment_datetime": f"{day.isoformat()}T{10 + order_id % 12:02d}:05:00Z",
        }
    return Sent(orders, payments)


def expected(sent: Sent, paid: set[int], parked: set[int]) -> dict[str, Any]:
    """The figures, from the events alone: ``paid`` orders have their payment in the row,
    ``parked`` payments (by order id) wait in the DLQ."""
    orders = sent.orders.values()
    lines = {o["order_id"]: o["price"] * o["quantity"] for o in orders}
    completed = [i for i in paid if sent.payments[i]["payment_status"] == "Completed"]
    methods: dict[str, dict[str, Any]] = {}
    for i in paid:
        entry = methods.setdefault(
            sent.payments[i]["payment_method"], {"orders": 0, "revenue": Decimal(0)}
        )
        entry["orders"] += 1
        if i in completed:
            entry["revenue"] += lines[i]
    return {
        "orders": len(sent.orders),
        "orders_paid": len(paid),
        "revenue_paid": sum((lines[i] for i in completed), Decimal(0)),
        "order_value": sum(lines.values(), Decimal(0)),
        "by_payment_method": methods,
        "by_order_status": dict(Counter(o["order_status"] for o in orders)),
        "by_item": dict(Counter(o["item"] for o in orders)),
        "by_day": dict(Counter(o["creation_date"][:10] for o in orders)),
        "payments_parked": len(parked),
    }


def observed(f: Figures) -> dict[str, Any]:
    """The report's figures in :func:`expected`'s form (money back to ``Decimal``)."""
    return {
        "orders": f.orders,
        "orders_paid": f.orders_paid,
        "revenue_paid": Decimal(f.revenue_paid),
        "order_value": Decimal(f.order_value),
        "by_payment_method": {
            m: {"orders": v.orders, "revenue": Decimal(v.revenue)}
            for m, v in f.by_payment_method.items()
        },
        "by_order_status": f.by_order_status,
        "by_item": {item: v.orders for item, v in f.by_item.items()},
        "by_day": {d.day: d.orders for d in f.by_day},
        "payments_parked": f.payments_parked,
    }


async def send(res: Resources, sent: Sent) -> None:
    """Early payments parked (their order absent), every order stored without its look at
    the DLQ (what the worker is for), late payments joined on the stream, orphans parked."""
    now = utc_now()
    for order_id in [*EARLY, *ORPHANS]:
        payment = parse_event(Payment, _json(sent.payments[order_id]), None)
        await res.dlq.park(payment, now, now)
    for fields in sent.orders.values():
        data = _json(fields)
        order = parse_event(Order, data, None)
        await res.orders.upsert_order(order, order_version_micros(order, now, data), now)
    for order_id in LATE:
        payment = parse_event(Payment, _json(sent.payments[order_id]), None)
        await res.orders.set_payment(payment, payment_version_micros(payment, now), "stream", now)


async def test_figures_equal_the_events_before_and_after_the_dlq_worker(
    resources: Resources,
) -> None:
    sent = events()
    await send(resources, sent)
    cassandra = resources.settings.cassandra

    before = (await build(cassandra, as_of=AS_OF)).figures
    assert observed(before) == expected(sent, set(LATE), {*EARLY, *ORPHANS})
    assert before.by_payment_source == {"stream": len(LATE)}
    assert before.parked_orders == len(EARLY) + len(ORPHANS)

    report = await Reconciler(resources.orders, resources.dlq, WorkerSettings()).run_pass()
    assert report.reconciled == len(EARLY)
    after = (await build(cassandra, as_of=AS_OF)).figures
    assert observed(after) == expected(sent, {*EARLY, *LATE}, set(ORPHANS))
    assert after.by_payment_source == {"dlq": len(EARLY), "stream": len(LATE)}
    assert after.orders_paid > before.orders_paid
    waits = sum(bucket.count for bucket in after.payment_wait)
    assert waits == len(EARLY) + len(LATE)


async def test_an_empty_store_gives_zero_figures(resources: Resources) -> None:
    figures = (await build(resources.settings.cassandra, as_of=AS_OF)).figures
    assert (figures.orders, figures.payments_parked, figures.revenue_paid) == (0, 0, "0")


@pytest.mark.spark
async def test_spark_computes_the_same_figures_as_the_embedded_engine(
    resources: Resources, tmp_path: Path
) -> None:
    """``ecom-report --engine spark`` as a user runs it (its own process, so Spark's JVM goes
    with it), on the connector's jars as Maven fetched them."""
    require_pyspark()
    sent = events(seed=23)
    await send(resources, sent)
    await Reconciler(resources.orders, resources.dlq, WorkerSettings()).run_pass()
    cassandra = resources.settings.cassandra
    embedded = await build(cassandra, as_of=AS_OF)
    jars = connector_jars()
    env = {
        **os.environ,
        "ECOM_CASSANDRA__CONTACT_POINTS": json.dumps(cassandra.contact_points),
        "ECOM_CASSANDRA__PORT": str(cassandra.port),
        "ECOM_CASSANDRA__KEYSPACE": cassandra.keyspace,
        "TZ": "UTC",
    }
    argv = [
        sys.executable, "-m", "ecom_report.cli", "--out", str(tmp_path), "--engine", "spark",
        "--master", "local[2]", "--spark-jars", str(jars[0].parent), "--as-of", AS_OF.isoformat(),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, output.decode(errors="replace")[-4000:]
    spark = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert spark.pop("engine") == "spark"
    assert spark.pop("seconds") > 0
    assert embedded.figures.orders == ORDERS
    assert spark == embedded.figures.as_json()
