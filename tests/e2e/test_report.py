"""``ecom-report`` on the demo's data, as a user runs it: its figures equal what the
producer's manifest says, worked out here by the tests' own rules; and the served page, looked
at in headless Chromium, draws every chart, logs no error and asks no other host for anything.

``ECOM_REPORT_SCREENSHOT=PATH`` keeps the screenshot there (the README's comes from here)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest

from tests.apps_tables import Expected
from tests.browser import Browser, png_size
from tests.e2e.demo_run import DEMO_BUDGET_SECONDS, ORDERS, ReadBack, cassandra_env, run
from tests.infra import InfraUnderTest
from tests.polling import eventually

pytestmark = pytest.mark.timeout(DEMO_BUDGET_SECONDS + 60)
CHARTS: Final = frozenset(
    {
        "revenue-per-day", "orders-per-day", "share-paid", "revenue-by-item",
        "orders-by-status", "method-orders", "method-revenue", "payment-source",
        "payment-wait", "dlq-now",
    }
)  # fmt: skip


def figures_from_manifest(expected: Expected) -> dict[str, Any]:
    """The figures, from what was sent (the version of each order published last, its winning
    payment, the payments whose order never came), summed as exact decimals."""
    value = {
        order_id: Decimal(sent.value["price"]) * sent.value["quantity"]
        for order_id, sent in expected.orders.items()
    }
    methods: dict[str, dict[str, Any]] = {}
    revenue = Decimal(0)
    for order_id, payment in expected.payments.items():
        method = methods.setdefault(
            payment.value["payment_method"], {"orders": 0, "revenue": Decimal(0)}
        )
        method["orders"] += 1
        if payment.value["payment_status"] == "Completed":
            method["revenue"] += value[order_id]
            revenue += value[order_id]
    orders = [sent.value for sent in expected.orders.values()]
    return {
        "orders": len(orders),
        "orders_paid": len(expected.payments),
        "revenue_paid": revenue,
        "order_value": sum(value.values(), Decimal(0)),
        "by_payment_method": methods,
        "by_order_status": dict(Counter(o["order_status"] for o in orders)),
        "by_day": dict(Counter(o["creation_date"][:10] for o in orders)),
        "by_item": dict(Counter(o["item"] for o in orders)),
        "payments_parked": len(expected.parked),
        "parked_orders": len({order_id for order_id, _ in expected.parked}),
    }


def figures_in(report: dict[str, Any]) -> dict[str, Any]:
    """``report.json`` in :func:`figures_from_manifest`'s form."""
    return {
        "orders": report["orders"],
        "orders_paid": report["orders_paid"],
        "revenue_paid": Decimal(report["revenue_paid"]),
        "order_value": Decimal(report["order_value"]),
        "by_payment_method": {
            m: {"orders": v["orders"], "revenue": Decimal(v["revenue"])}
            for m, v in report["by_payment_method"].items()
        },
        "by_order_status": report["by_order_status"],
        "by_day": {d["day"]: d["orders"] for d in report["by_day"]},
        "by_item": {item: v["orders"] for item, v in report["by_item"].items()},
        "payments_parked": report["payments_parked"],
        "parked_orders": report["parked_orders"],
    }


async def test_the_report_equals_what_the_manifest_says(
    read_back: ReadBack, infra: InfraUnderTest, tmp_path: Path
) -> None:
    argv = [sys.executable, "-m", "ecom_report.cli", "--out", str(tmp_path)]
    code, output = await run(argv, {**os.environ, **cassandra_env(infra)}, 300)
    assert code == 0, output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert figures_in(report) == figures_from_manifest(read_back.expected)
    assert report["orders"] == ORDERS
    assert report["payments_parked"] > 0  # the demo's orphans still wait
    assert report["oldest_parked_age_seconds"] >= 0
    assert sum(report["by_payment_source"].values()) == report["orders_paid"]
    assert sum(b["count"] for b in report["payment_wait"]) == report["orders_paid"]
    assert "Store report" in (tmp_path / "report.html").read_text(encoding="utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


_MARKS: Final = (
    "Object.fromEntries(Array.from(document.querySelectorAll('figure'))"
    ".map(f => [f.id, f.querySelectorAll('svg .mark').length]))"
)
_DRAWN: Final = (
    "Array.from(document.querySelectorAll('svg .mark'))"
    ".filter(m => { const b = m.getBBox(); return b.width > 0 && b.height > 0; }).length"
)


@pytest.mark.browser
async def test_the_served_page_draws_every_chart(
    demo: dict[str, Any], infra: InfraUnderTest, tmp_path: Path
) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ecom_report.cli", "serve", "--port", str(port)),
        *("--refresh", "5"),
        env={**os.environ, **cassandra_env(infra)},
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"{url}/readyz") as reply:
                        return reply.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, 120, what="the report server to be ready")
        async with Browser(width=1280, height=900) as browser:
            look = await browser.open(f"{url}/")
            marks = await browser.evaluate(_MARKS)
            drawn = await browser.evaluate(_DRAWN)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        log.close()
    (tmp_path / "report.png").write_bytes(look.screenshot_png)
    if keep := os.environ.get("ECOM_REPORT_SCREENSHOT"):
        shutil.copy(tmp_path / "report.png", keep)
    assert look.console_errors == ()
    assert look.requests_elsewhere() == ()
    assert isinstance(marks, dict)
    counts = {chart: n for chart, n in marks.items() if isinstance(n, int) and n > 0}
    assert set(counts) == CHARTS, marks  # every chart, each with marks
    assert drawn == sum(counts.values())  # and every mark has a size on screen
    width, height = png_size(look.screenshot_png)
    assert width == 1280
    assert height > 1500  # the whole page, not the first screen
