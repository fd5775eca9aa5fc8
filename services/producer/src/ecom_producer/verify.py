"""``ecom-verify``: compare the tables with the producer's manifest, category by category.

Both tables are read by token range, one page at a time; only rows whose order id falls in
the manifest's range are judged, so other runs' rows in the same table are left alone. Exit
code 0 only when everything matches; otherwise the first differences are printed by id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecom_shared.cassandra import Session, cassandra_session, scan_by_token
from ecom_shared.cqltypes import blob_to_decimal
from ecom_shared.events import Order, Payment
from ecom_shared.logs import configure_logging
from ecom_shared.manifest import ExpectedState, load_expected
from ecom_shared.service import load_settings, run_async
from ecom_shared.settings import CassandraSettings, ServiceSettings

CATEGORIES = (
    "orders_missing",
    "orders_wrong",
    "payments_missing",
    "payments_wrong",
    "payments_unexplained",
    "parked_missing",
    "parked_but_order_exists",
    "rows_unexplained",
)
_ORDER_COLS = (
    "customer_id",
    "item",
    "quantity",
    "price_blob",
    "shipping_address",
    "order_status",
    "order_created_at",
)
_PAYMENT_COLS = ("payment_id", "payment_method", "card_last_four", "payment_status", "paid_at")
EXIT_USAGE = 2
_SOURCE_TOTALS = {"stream": "joined_on_stream", "dlq": "joined_by_dlq_worker"}


@dataclass(slots=True)
class Report:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    examples: dict[str, list[str]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    observed: dict[str, int] = field(
        default_factory=lambda: {
            "orders_stored": 0,
            "joined_on_stream": 0,
            "joined_by_dlq_worker": 0,
            "still_parked": 0,
        }
    )

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())

    def add(self, category: str, example: str, limit: int = 10) -> None:
        self.counts[category] += 1
        shown = self.examples.setdefault(category, [])
        if len(shown) < limit:
            shown.append(example)


def _ms(moment: datetime | None) -> datetime | None:
    """Cassandra keeps milliseconds; compare at that precision, in UTC."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(microsecond=aware.microsecond // 1000 * 1000)


def _order_values(order: Order) -> tuple[Any, ...]:
    return (
        order.customer_id,
        order.item,
        order.quantity,
        order.price,
        order.shipping_address,
        order.order_status.value,
        _ms(order.creation_date),
    )


def _payment_values(payment: Payment) -> tuple[Any, ...]:
    return (
        payment.payment_id,
        payment.payment_method.value,
        payment.card_last_four,
        payment.payment_status.value,
        _ms(payment.payment_datetime),
    )


def _row_values(row: Any, columns: tuple[str, ...]) -> tuple[Any, ...]:
    values = []
    for column in columns:
        value = row.column_value(column)
        if isinstance(value, datetime):
            value = _ms(value)
        elif column == "price_blob":
            value = None if value is None else blob_to_decimal(value)
        values.append(value)
    return tuple(values)


async def verify(session: Session, settings: CassandraSettings, expected: ExpectedState) -> Report:
    report = Report()
    await _check_orders(session, settings, expected, report)
    await _check_dlq(session, settings, expected, report)
    report.totals = {
        "manifest_lines": expected.published,
        "duplicates_published": expected.duplicates,
        "orders": len(expected.orders),
        "payments_joined": len(expected.payments),
        "payments_parked": len(expected.parked),
        "malformed": sum(expected.malformed.values()),
    }
    return report


async def _check_orders(
    session: Session, settings: CassandraSettings, expected: ExpectedState, report: Report
) -> None:
    low, high = (min(expected.orders), max(expected.orders)) if expected.orders else (0, -1)
    cols = ", ".join(("order_id", *_ORDER_COLS, *_PAYMENT_COLS, "payment_source")).replace(
        "price_blob", "decimalAsBlob(price) AS price_blob"
    )  # see ecom_shared.cqltypes
    prepared = await session.create_prepared(
        f"SELECT {cols} FROM {settings.keyspace}.{settings.orders_table} "
        "WHERE token(order_id) >= ? AND token(order_id) <= ?"
    )
    seen: set[int] = set()
    async for row in scan_by_token(session, prepared, page_size=1000, segments=16):
        order_id = row.column_value("order_id")
        if not low <= order_id <= high:
            continue  # another run's row
        seen.add(order_id)
        _judge_row(row, order_id, expected, report)
        report.observed["orders_stored"] += row.column_value("order_created_at") is not None
        source = _SOURCE_TOTALS.get(row.column_value("payment_source") or "")
        if source:
            report.observed[source] += 1
    for order_id in expected.orders.keys() - seen:
        report.add("orders_missing", str(order_id))
    for order_id in expected.payments.keys() - seen:
        report.add("payments_missing", str(order_id))


def _judge_row(row: Any, order_id: int, expected: ExpectedState, report: Report) -> None:
    order = expected.orders.get(order_id)
    if order is None:
        report.add("rows_unexplained", str(order_id))
        return
    got = _row_values(row, _ORDER_COLS)
    if got != _order_values(order):
        report.add("orders_wrong", f"{order_id}: got {got!r}")
    payment = expected.payments.get(order_id)
    got_payment = _row_values(row, _PAYMENT_COLS)
    if payment is None:
        if got_payment[0] is not None:
            report.add("payments_unexplained", f"{order_id}: payment {got_payment[0]}")
    elif got_payment[0] is None:
        report.add("payments_missing", str(order_id))
    elif got_payment != _payment_values(payment):
        report.add("payments_wrong", f"{order_id}: got {got_payment!r}")


async def _check_dlq(
    session: Session, settings: CassandraSettings, expected: ExpectedState, report: Report
) -> None:
    prepared = await session.create_prepared(
        f"SELECT order_id, payment_id FROM {settings.keyspace}.{settings.dlq_table} "
        "WHERE token(order_id) >= ? AND token(order_id) <= ?"
    )
    parked_ids = {order_id for order_id, _ in expected.parked}
    seen: set[tuple[int, int]] = set()
    async for row in scan_by_token(session, prepared, page_size=1000, segments=16):
        key = (row.column_value("order_id"), row.column_value("payment_id"))
        if key[0] in expected.orders:
            report.add("parked_but_order_exists", f"{key[0]}/{key[1]}")
        elif key[0] in parked_ids:
            seen.add(key)
            report.observed["still_parked"] += 1
    for order_id, payment_id in expected.parked.keys() - seen:
        report.add("parked_missing", f"{order_id}/{payment_id}")


def render(report: Report) -> str:
    lines = [f"{'category':<26} count"]
    lines += [f"{name:<26} {count}" for name, count in report.counts.items()]
    lines += [f"{name:<26} {count}" for name, count in report.totals.items()]
    lines += [f"{name:<26} {count}" for name, count in report.observed.items()]
    for name, examples in report.examples.items():
        lines.append(f"first {name}: {', '.join(examples)}")
    lines.append("verification: PASSED" if report.ok else "verification: FAILED")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecom-verify", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="keep checking for up to this many seconds until everything matches",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    settings = load_settings(ServiceSettings)
    configure_logging(settings.log, service="verify")
    try:
        expected = load_expected(args.manifest)
    except OSError as exc:
        sys.stderr.write(f"ecom-verify: cannot read {args.manifest}: {exc.strerror}\n")
        return EXIT_USAGE
    if not expected.published:
        sys.stderr.write(
            f"ecom-verify: {args.manifest} holds no records, so there is nothing to verify "
            "(is the producer still running? it writes the manifest as it goes)\n"
        )
        return EXIT_USAGE

    async def run(stop: asyncio.Event) -> int:
        deadline = time.monotonic() + args.wait
        async with cassandra_session(settings.cassandra) as session:
            while True:
                report = await verify(session, settings.cassandra, expected)
                if report.ok or time.monotonic() >= deadline or stop.is_set():
                    break
                await asyncio.sleep(1.0)
        output = (
            json.dumps(
                {
                    "ok": report.ok,
                    "counts": report.counts,
                    "totals": report.totals,
                    "observed": report.observed,
                    "examples": report.examples,
                },
            )
            if args.json
            else render(report)
        )
        sys.stdout.write(output + "\n")
        return 0 if report.ok else 1

    return run_async(run)
