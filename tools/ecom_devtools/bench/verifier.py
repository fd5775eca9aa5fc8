"""``ecom-verify`` at scale: N orders with their payments (some re-emitted, some parked) written
straight into a fresh pair of tables, the matching manifest written the producer's way, then
the verifier run as a process twice: on the intact tables (it must pass) and after a few
deliberate breakages (it must fail with exactly the counts they imply). Time, rows/s and peak
memory of each run are the figures.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import acsylla

from ecom_devtools.bench.context import Bench, Section
from ecom_devtools.bench.measure import peak_rss_bytes
from ecom_devtools.bench.stack import Stage, staged
from ecom_devtools.bench.workload import ID_BASE
from ecom_producer.stream import ORPHAN_ID_OFFSET
from ecom_shared.cassandra import Session, bind
from ecom_shared.cqltypes import decimal_to_blob
from ecom_shared.events import Order, OrderStatus, Payment, PaymentMethod, PaymentStatus
from ecom_shared.manifest import malformed_record, open_manifest, order_record, payment_record

_CHUNK = 20_000  # orders generated, written to the manifest and inserted at a time
_T0 = datetime(2026, 1, 1, tzinfo=UTC)
_ORPHAN_BASE = ID_BASE + ORPHAN_ID_OFFSET
_IN_FLIGHT = 128  # inserts in flight while filling
_ATTEMPTS = 6  # a loaded machine times writes out now and then: they are idempotent
_REEMIT_EVERY, _UNPAID_EVERY, _DUPLICATE_EVERY = 10, 20, 50  # one order in so many


@dataclass(frozen=True)
class Shape:
    """Which orders are re-emitted, unpaid, orphaned, duplicated: fixed shares by index."""

    orders: int

    @property
    def hole(self) -> int:
        """An order id inside the range that no order takes (a row there is unexplained)."""
        return ID_BASE + self.orders // 2

    def order_id(self, i: int) -> int:
        return ID_BASE + i + (1 if ID_BASE + i >= self.hole else 0)

    @staticmethod
    def reemitted(i: int) -> bool:
        return (i + 7) % _REEMIT_EVERY == 0

    @staticmethod
    def paid(i: int) -> bool:
        return (i + 13) % _UNPAID_EVERY != 0

    @property
    def orphans(self) -> int:
        return max(3, self.orders // 100)


def _order(i: int, order_id: int, *, newer: bool) -> Order:
    created = _T0 + timedelta(seconds=i)
    return Order.model_construct(
        order_id=order_id, customer_id=1 + i % 50_000, item=f"Bench item {i % 97} ☕",
        quantity=1 + i % 5, price=Decimal(199 + i % 90_000) / 100,
        shipping_address=f"{i % 999} Main St, Springfield",
        order_status=OrderStatus.SHIPPED if newer else OrderStatus.PENDING,
        creation_date=created, updated_at=created + timedelta(hours=1 if newer else 0),
    )  # fmt: skip


def _payment(i: int, order_id: int) -> Payment:
    return Payment.model_construct(
        payment_id=order_id * 10, order_id=order_id,
        payment_method=list(PaymentMethod)[i % len(PaymentMethod)],
        card_last_four=f"{i % 10_000:04d}", payment_status=PaymentStatus.COMPLETED,
        payment_datetime=_T0 + timedelta(seconds=i, minutes=5),
    )  # fmt: skip


def _orders_cql(stage: Stage) -> str:
    return (
        f"INSERT INTO {stage.orders_table} (order_id, customer_id, item, quantity, price,"
        " shipping_address, order_status, order_created_at, payment_id, payment_method,"
        " card_last_four, payment_status, paid_at, payment_source) VALUES (?, ?, ?, ?,"
        " blobAsDecimal(?), ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )


def _values(order: Order, payment: Payment | None) -> list[Any]:
    values: list[Any] = [
        order.order_id, order.customer_id, order.item, order.quantity,
        decimal_to_blob(order.price), order.shipping_address, order.order_status.value,
        order.creation_date,
    ]  # fmt: skip
    if payment is None:
        return [*values, None, None, None, None, None, None]
    return [
        *values, payment.payment_id, payment.payment_method.value, payment.card_last_four,
        payment.payment_status.value, payment.payment_datetime, "stream",
    ]  # fmt: skip


def _chunk(shape: Shape, start: int, stop: int, lines: list[str]) -> list[list[Any]]:
    """Orders ``start..stop``: their manifest lines (appended) and their rows' values."""
    rows = []
    for i in range(start, stop):
        order_id = shape.order_id(i)
        order = _order(i, order_id, newer=False)
        lines.append(order_record(order, duplicate=False))
        if shape.reemitted(i):
            order = _order(i, order_id, newer=True)
            lines.append(order_record(order))
        payment = _payment(i, order_id) if shape.paid(i) else None
        if payment is not None:
            lines.append(payment_record(payment, orphan=False))
            if (i + 39) % _DUPLICATE_EVERY == 0:
                lines.append(payment_record(payment, orphan=False, duplicate=True))
        rows.append(_values(order, payment))
    return rows


async def execute_all(session: Session, cql: str, rows: list[list[Any]]) -> None:
    """One prepared statement per row of values, ``_IN_FLIGHT`` at a time, retried."""
    prepared = await session.create_prepared(cql)
    slots = asyncio.Semaphore(_IN_FLIGHT)

    async def one(values: list[Any]) -> None:
        async with slots:
            for attempt in range(_ATTEMPTS):
                try:
                    await session.execute(bind(prepared, values))
                except acsylla.errors.CassException:
                    if attempt == _ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.5 * 2**attempt)
                else:
                    return

    await asyncio.gather(*(one(v) for v in rows))


def _write_chunk(shape: Shape, start: int, out: TextIO) -> tuple[list[list[Any]], int]:
    lines: list[str] = []
    rows = _chunk(shape, start, min(start + _CHUNK, shape.orders), lines)
    out.write("\n".join(lines) + "\n")
    return rows, len(lines)


async def fill(bench: Bench, stage: Stage, shape: Shape, manifest: Path) -> int:
    """Write the tables and the manifest; return the manifest's line count. The next chunk
    is planned (in a thread) while the last one is inserted."""
    cql = _orders_cql(stage)
    written = 0
    with open_manifest(manifest) as out:
        inserting: asyncio.Future[None] | None = None
        for start in range(0, shape.orders, _CHUNK):
            rows, count = await asyncio.to_thread(_write_chunk, shape, start, out)
            written += count
            if inserting is not None:
                await inserting
            inserting = asyncio.ensure_future(execute_all(bench.cql, cql, rows))
        if inserting is not None:
            await inserting
        orphans = [_payment(k, _ORPHAN_BASE + k) for k in range(1, shape.orphans + 1)]
        out.write("".join(payment_record(p, orphan=True) + "\n" for p in orphans))
        out.write(malformed_record("orders", "invalid_json") + "\n")
        written += len(orphans) + 1
    await execute_all(
        bench.cql,
        f"INSERT INTO {stage.dlq_table} (order_id, payment_id, payment_method, card_last_four,"
        " payment_status, paid_at, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            [p.order_id, p.payment_id, p.payment_method.value, p.card_last_four,
             p.payment_status.value, p.payment_datetime, datetime.now(UTC)]
            for p in orphans
        ],
    )  # fmt: skip
    return written


EXPECTED_COUNTS = {
    "orders_missing": 3,  # three rows deleted (all paid orders) ...
    "payments_missing": 3,  # ... so their payments are missing too
    "orders_wrong": 3,  # three statuses changed
    "payments_wrong_order": 2,  # two rows given another order's payment
    "parked_missing": 1,  # one parked orphan removed
    "parked_but_order_exists": 1,  # one paid order's payment parked as well
    "rows_unexplained": 1,  # a row for an id inside the range that no order has
}


def _victims(shape: Shape) -> list[int]:
    """Eleven paid, never re-emitted orders spread over the range (by index)."""
    step = max(1, shape.orders // 40)
    found = [i for i in range(5, shape.orders, step) if shape.paid(i) and not shape.reemitted(i)]
    if len(found) < 11:  # noqa: PLR2004 - the breakages below take eleven orders
        raise ValueError(f"{shape.orders} orders are too few to break (40 or more)")
    return found[:11]


async def breakage(bench: Bench, stage: Stage, shape: Shape) -> None:
    """Make exactly the defects :data:`EXPECTED_COUNTS` lists."""
    v = [shape.order_id(i) for i in _victims(shape)]
    orders, dlq, cql = stage.orders_table, stage.dlq_table, bench.cql
    await execute_all(cql, f"DELETE FROM {orders} WHERE order_id = ?", [[x] for x in v[0:3]])
    status = f"UPDATE {orders} SET order_status = 'cancelled' WHERE order_id = ?"
    await execute_all(cql, status, [[x] for x in v[3:6]])
    moved = (
        f"UPDATE {orders} SET payment_id = ?, payment_method = ?, card_last_four = ?,"
        " payment_status = ?, paid_at = ? WHERE order_id = ?"
    )
    pays = [_payment(i, shape.order_id(i)) for i in _victims(shape)[8:10]]
    await execute_all(cql, moved, [
        [p.payment_id, p.payment_method.value, p.card_last_four, p.payment_status.value,
         p.payment_datetime, target] for p, target in zip(pays, v[6:8], strict=True)
    ])  # fmt: skip
    orphan = _payment(1, _ORPHAN_BASE + 1)
    gone = f"DELETE FROM {dlq} WHERE order_id = ? AND payment_id = ?"
    await execute_all(cql, gone, [[orphan.order_id, orphan.payment_id]])
    extra = _payment(_victims(shape)[10], v[10])
    park = f"INSERT INTO {dlq} (order_id, payment_id, payment_status) VALUES (?, ?, ?)"
    await execute_all(cql, park, [[extra.order_id, extra.payment_id, "completed"]])
    stray = _values(_order(0, shape.hole, newer=False), None)
    await execute_all(cql, _orders_cql(stage), [stray])


async def run_verify(stage: Stage, manifest: Path, log: Path, timeout: float) -> Section:
    """``ecom-verify --json`` as a process: its report, wall time and peak RSS."""
    argv = [sys.executable, "-m", "ecom_producer.verify", "--manifest", str(manifest), "--json",
            "--index-dir", str(manifest.parent)]  # fmt: skip
    loop = asyncio.get_running_loop()
    started = loop.time()
    process = _spawn(argv, stage.env(), log)
    sampled = 0
    while process.poll() is None:
        sampled = max(sampled, peak_rss_bytes(process.pid) or 0)
        if loop.time() - started > timeout:
            process.kill()
        await asyncio.sleep(0.05)
    seconds = loop.time() - started
    report = _report(log)
    observed = report.get("observed", {})
    rows = observed.get("order_rows_read", 0) + observed.get("parked_rows_read", 0)
    return {
        "exit_code": process.returncode,
        "seconds": round(seconds, 2),
        "index_seconds": report.get("index_seconds"),
        "rows_read": rows,
        "rows_per_s": round(rows / seconds, 1),
        # VmHWM as the verifier read it on its way out; and as read here every 50 ms. (Not
        # wait4's ru_maxrss: it keeps the forking parent's RSS from before the exec.)
        "peak_rss_bytes": max(report.get("peak_rss_bytes") or 0, sampled),
        "peak_rss_sampled_bytes": sampled,
        "counts": {k: n for k, n in report.get("counts", {}).items() if n},
        "examples": report.get("examples", {}),
    }


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def _report(log: Path) -> dict[str, Any]:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{") and '"counts"' in line:
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                return parsed
    return {}


async def verifier(bench: Bench) -> None:
    """The ``verifier`` section: fill, verify intact, break, verify again."""
    shape = Shape(bench.options.sizes.verify_orders)
    async with staged(bench.infra, "verify") as stage:
        bench.results["verifier"] = await _measure(bench, stage, shape)
        for table in (stage.orders_table, stage.dlq_table):
            await bench.cql.execute(acsylla.create_statement(f"DROP TABLE IF EXISTS {table}"))


async def _measure(bench: Bench, stage: Stage, shape: Shape) -> Section:
    work = bench.infra.logs / "verify"
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "manifest.jsonl"
    manifest.unlink(missing_ok=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    lines = await fill(bench, stage, shape, manifest)
    fill_seconds = loop.time() - started
    timeout = 300 + shape.orders / 1000
    clean = await run_verify(stage, manifest, work / "verify-intact.log", timeout)
    await breakage(bench, stage, shape)
    broken = await run_verify(stage, manifest, work / "verify-broken.log", timeout)
    size = manifest.stat().st_size
    manifest.unlink()  # hundreds of MB at full size
    return {
        "orders": shape.orders,
        "manifest_lines": lines,
        "manifest_bytes": size,
        "fill_seconds": round(fill_seconds, 1),
        "intact": clean,
        "broken": broken,
        "expected_counts": EXPECTED_COUNTS,
        "counts_exact": broken["counts"] == EXPECTED_COUNTS,
    }
