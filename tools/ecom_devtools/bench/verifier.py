"""``ecom-verify`` at scale: N orders with their payments (some re-emitted, some parked) written
straight into a fresh pair of tables, the matching manifest written the producer's way, then
the verifier run as a process twice: on the intact tables (it must pass) and after a few
deliberate breakages (it must fail with exactly the counts they imply; three of them change
one value by a single character, which only an exact comparison sees). Time, rows/s and peak
memory of each run are the figures.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import acsylla

from ecom_devtools.bench.context import Bench
from ecom_devtools.bench.run_results import VerifierResult, VerifyRun
from ecom_devtools.bench.stack import Stage, staged
from ecom_devtools.bench.verifier_rows import (
    ORPHAN_BASE,
    Shape,
    execute_all,
    fill,
    make_order,
    make_payment,
    orders_insert_cql,
    paid_at,
    row_values,
)
from ecom_shared.cassandra.cqltypes import decimal_to_blob
from ecom_shared.observability.procstat import peak_rss_bytes

EXPECTED_COUNTS = {
    "orders_missing": 3,  # three rows deleted (all paid orders) ...
    "payments_missing": 3,  # ... so their payments are missing too
    "orders_wrong": 3,  # a status's case, a price's last digit, one byte of an address
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


def other_last_digit(value: Decimal) -> Decimal:
    """The same number of digits, the last one changed."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # a finite number
    return Decimal((sign, (*digits[:-1], (digits[-1] + 1) % 10), exponent))


def other_last_byte(text: str) -> str:
    return text[:-1] + chr(ord(text[-1]) ^ 1)


async def _tamper(bench: Bench, stage: Stage, shape: Shape, victims: list[int]) -> None:
    """One value changed in each of three rows, each a difference only an exact check sees."""
    table, cql = stage.orders_table, bench.cql
    sent = [make_order(i, shape.order_id(i), newer=False).values for i in victims]
    changes = [
        ("order_status = ?", sent[0]["order_status"].lower()),
        ("price = blobAsDecimal(?)", decimal_to_blob(other_last_digit(sent[1]["price"]))),
        ("shipping_address = ?", other_last_byte(sent[2]["shipping_address"])),
    ]
    for (assignment, value), order in zip(changes, sent, strict=True):
        update = f"UPDATE {table} SET {assignment} WHERE order_id = ?"
        await execute_all(cql, update, [[value, order["order_id"]]])


async def breakage(bench: Bench, stage: Stage, shape: Shape) -> None:
    """Make exactly the defects :data:`EXPECTED_COUNTS` lists."""
    victims = _victims(shape)
    v = [shape.order_id(i) for i in victims]
    orders, dlq, cql = stage.orders_table, stage.dlq_table, bench.cql
    await execute_all(cql, f"DELETE FROM {orders} WHERE order_id = ?", [[x] for x in v[0:3]])
    await _tamper(bench, stage, shape, victims[3:6])
    moved = (
        f"UPDATE {orders} SET payment_id = ?, payment_method = ?, card_last_four = ?,"
        " payment_status = ?, paid_at = ? WHERE order_id = ?"
    )
    pays = [make_payment(i, shape.order_id(i)) for i in victims[8:10]]
    await execute_all(cql, moved, [
        [*(p.values[k] for k in ("payment_id", "payment_method", "card_last_four",
                                 "payment_status")), paid_at(p), target]
        for p, target in zip(pays, v[6:8], strict=True)
    ])  # fmt: skip
    orphan = make_payment(1, ORPHAN_BASE + 1).values
    gone = f"DELETE FROM {dlq} WHERE order_id = ? AND payment_id = ?"
    await execute_all(cql, gone, [[orphan["order_id"], orphan["payment_id"]]])
    extra = make_payment(victims[10], v[10]).values
    park = f"INSERT INTO {dlq} (order_id, payment_id, payment_status) VALUES (?, ?, ?)"
    await execute_all(cql, park, [[extra["order_id"], extra["payment_id"], "Completed"]])
    stray = row_values(make_order(0, shape.hole, newer=False), None)
    await execute_all(cql, orders_insert_cql(stage), [stray])


async def run_verify(stage: Stage, manifest: Path, log: Path, timeout: float) -> VerifyRun:
    """``ecom-verify --json`` as a process: its report, wall time and peak RSS."""
    argv = [sys.executable, "-m", "ecom_verifier.verify", "--manifest", str(manifest), "--json",
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
    return VerifyRun(
        exit_code=process.returncode,
        seconds=round(seconds, 2),
        index_seconds=report.get("index_seconds"),
        rows_read=rows,
        rows_per_s=round(rows / seconds, 1),
        # VmHWM as the verifier read it on its way out; and as read here every 50 ms. (Not
        # wait4's ru_maxrss: it keeps the forking parent's RSS from before the exec.)
        peak_rss_bytes=max(report.get("peak_rss_bytes") or 0, sampled),
        peak_rss_sampled_bytes=sampled,
        counts={k: n for k, n in report.get("counts", {}).items() if n},
        examples=report.get("examples", {}),
    )


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
        bench.results.record("verifier", await _measure(bench, stage, shape))
        for table in (stage.orders_table, stage.dlq_table):
            await bench.cql.execute(acsylla.create_statement(f"DROP TABLE IF EXISTS {table}"))


async def _measure(bench: Bench, stage: Stage, shape: Shape) -> VerifierResult:
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
    return VerifierResult(
        orders=shape.orders,
        manifest_lines=lines,
        manifest_bytes=size,
        fill_seconds=round(fill_seconds, 1),
        intact=clean,
        broken=broken,
        expected_counts=EXPECTED_COUNTS,
    )
