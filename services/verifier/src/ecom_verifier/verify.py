"""``ecom-verify``: compare the tables with the producer's manifest, category by category.

The manifest is folded once into an on-disk index (:mod:`ecom_verifier.manifest_index`); both
tables are read by token range, one page at a time, and each row is judged against the index
(:mod:`ecom_verifier.checks` names the categories). Memory therefore stays about the
same whatever the size of the manifest or the tables. Only rows whose order id falls in the
manifest's id ranges are judged, so other runs' rows in the same tables are left alone. With
``--dead-letter-subscription`` it also reads that subscription, without consuming it, and
checks that it holds every malformed message of the manifest with its reason, and nothing else
(:mod:`ecom_verifier.dead_letters`). Exit code 0 only when everything matches;
otherwise the first differences are printed by id.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import aiohttp

from ecom_shared.cassandra.session import Session, cassandra_session, scan_by_token
from ecom_shared.observability.logs import configure_logging, get_logger
from ecom_shared.observability.procstat import peak_rss_bytes
from ecom_shared.pubsub.client import PubSubSubscription, http_session
from ecom_shared.runtime.service import load_settings, run_async
from ecom_shared.settings import CassandraSettings, ServiceSettings
from ecom_verifier.checks import CATEGORIES, ParkedRow, Report, StoredRow, check
from ecom_verifier.dead_letters import (
    DeadLetterCheck,
    SubscriptionDeadLetters,
    check_dead_letters,
)
from ecom_verifier.manifest import ExpectedState, millis
from ecom_verifier.manifest_index import ManifestIndex

__all__ = ["CATEGORIES", "EXIT_USAGE", "Report", "main", "render", "verify"]

log = get_logger(__name__)

EXIT_USAGE: Final = 2
PAGE_SIZE: Final = 5000
SEGMENTS: Final = 64
PAGE_ATTEMPTS: Final = 6  # a page that times out is asked for again (reads are idempotent)
_ORDER_COLUMNS: Final = (
    "order_id, customer_id, item, quantity, decimalAsBlob(price) AS price_blob, shipping_address,"
    " order_status, order_created_at, order_created_on, payment_id, payment_method,"
    " card_last_four, payment_status, paid_at, payment_source"
)  # price through a blob: acsylla reads decimals wrongly (see ecom_shared.cassandra.cqltypes)
_PARKED_COLUMNS: Final = (
    "order_id, payment_id, payment_method, card_last_four, payment_status, paid_at"
)


def _ms(moment: datetime | None) -> int | None:
    """Cassandra keeps milliseconds; acsylla gives naive UTC datetimes."""
    return None if moment is None else millis(moment)


def price_text(blob: bytes | None) -> str | None:
    """The exact decimal of a CQL ``decimal`` read as a blob, as text (digits and exponent).

    Decoded here rather than with the services' own decoder, so that a mistake there is not
    repeated in the check: a 4-byte big-endian scale, then the unscaled value as a big-endian
    two's-complement varint; built from text, so no context precision rounds it.
    """
    if blob is None:
        return None
    scale = int.from_bytes(blob[:4], "big", signed=True)
    unscaled = int.from_bytes(blob[4:], "big", signed=True)
    return str(Decimal(f"{unscaled}E{-scale}"))


def _payment(row: Any, payment_id: int) -> tuple[Any, ...]:
    value = row.column_value
    return (
        payment_id, value("payment_method"), value("card_last_four"), value("payment_status"),
        _ms(value("paid_at")),
    )  # fmt: skip


def stored_row(row: Any) -> StoredRow:
    """An acsylla row of the orders table in the index's form."""
    value = row.column_value
    created = value("order_created_at")
    order = None
    if created is not None:
        order = (
            value("customer_id"), value("item"), value("quantity"),
            price_text(value("price_blob")), value("shipping_address"), value("order_status"),
            _ms(created), value("order_created_on"),
        )  # fmt: skip
    payment_id = value("payment_id")
    payment = None if payment_id is None else _payment(row, payment_id)
    return StoredRow(value("order_id"), order, payment, value("payment_source"))  # type: ignore[arg-type]


def parked_row(row: Any) -> ParkedRow:
    """An acsylla row of the DLQ table in the index's form."""
    payment = _payment(row, row.column_value("payment_id"))
    return ParkedRow(row.column_value("order_id"), payment)


class CassandraTables:
    """Both tables, read by token range with paging (the next page is fetched while this
    one is judged)."""

    def __init__(self, session: Session, settings: CassandraSettings) -> None:
        self._session = session
        self._settings = settings

    async def _scan(self, columns: str, table: str) -> AsyncIterator[Any]:
        prepared = await self._session.create_prepared(
            f"SELECT {columns} FROM {self._settings.keyspace}.{table} "
            "WHERE token(order_id) >= ? AND token(order_id) <= ?"
        )
        async for row in scan_by_token(
            self._session,
            prepared,
            page_size=PAGE_SIZE,
            segments=SEGMENTS,
            prefetch=True,
            attempts=PAGE_ATTEMPTS,
        ):
            yield row

    async def order_rows(self) -> AsyncIterator[StoredRow]:
        async for row in self._scan(_ORDER_COLUMNS, self._settings.orders_table):
            yield stored_row(row)

    async def parked_rows(self) -> AsyncIterator[ParkedRow]:
        async for row in self._scan(_PARKED_COLUMNS, self._settings.dlq_table):
            yield parked_row(row)


async def verify(
    session: Session,
    settings: CassandraSettings,
    expected: ExpectedState | ManifestIndex,
    *,
    dead_letters: DeadLetterCheck | None = None,
) -> Report:
    """Check both tables against the manifest (an index, or a small folded state), and the
    dead letters too when ``dead_letters`` says where they are."""
    if isinstance(expected, ManifestIndex):
        return await _check_once(session, settings, expected, dead_letters)
    index = ManifestIndex.from_state(expected)
    try:
        return await _check_once(session, settings, index, dead_letters)
    finally:
        index.close()


async def _check_once(
    session: Session,
    settings: CassandraSettings,
    index: ManifestIndex,
    dead_letters: DeadLetterCheck | None,
) -> Report:
    report = await check(CassandraTables(session, settings), index)
    if dead_letters is not None:
        await check_dead_letters(dead_letters, index, report)
    return report


def render(report: Report) -> str:
    lines = [f"{'category':<26} count"]
    lines += [f"{name:<26} {count}" for name, count in report.counts.items()]
    lines += [f"{name:<26} {count}" for name, count in report.totals.items()]
    lines += [f"{name:<26} {count}" for name, count in report.observed.items()]
    for name, examples in report.examples.items():
        lines.append(f"first {name}: {'; '.join(examples)}")
    lines.append("verification: PASSED" if report.ok else "verification: FAILED")
    return "\n".join(lines)


def as_json(report: Report, *, seconds: float, index_seconds: float) -> str:
    return json.dumps(
        {
            "ok": report.ok,
            "counts": report.counts,
            "totals": report.totals,
            "observed": report.observed,
            "examples": report.examples,
            "seconds": round(seconds, 3),  # in all, with the index
            "index_seconds": round(index_seconds, 3),  # folding the manifest
            "peak_rss_bytes": peak_rss_bytes(),
        },
        ensure_ascii=False,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecom-verify", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="keep checking for up to this many seconds until everything matches",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--dead-letter-subscription",
        metavar="NAME",
        help="also check this subscription of the dead-letter topic, read without consuming "
        "it: every malformed message of the manifest there with its reason, nothing else "
        "(it must hold this run's dead letters only)",
    )
    parser.add_argument(
        "--index-dir",
        type=Path,
        help="where the manifest's scratch index goes (default: the system's temporary "
        "directory; about 120 bytes a manifest line)",
    )
    return parser


def _load(manifest: Path, index_dir: Path | None, *, named: bool) -> ManifestIndex | str:
    """The manifest's index, or why it cannot be built (or, with ``named``, why its dead
    letters cannot be checked)."""
    try:
        index = ManifestIndex.load(manifest, None if index_dir is None else index_dir / "index.db")
    except OSError as exc:
        return f"cannot read {manifest}: {exc.strerror}"
    except (ValueError, KeyError, TypeError) as exc:
        return f"{manifest} is not a manifest the producer wrote: {exc}"
    if not index.totals.published:
        index.close()
        return (
            f"{manifest} holds no records, so there is nothing to verify "
            "(is the producer still running? it writes the manifest as it goes)"
        )
    if named and index.totals.malformed_unnamed:
        index.close()
        return (
            f"{manifest} has {index.totals.malformed_unnamed} malformed records without a "
            "message_id (written by an older producer), so its dead letters cannot be matched"
        )
    return index


async def _checked(
    settings: ServiceSettings, index: ManifestIndex, args: argparse.Namespace, stop: asyncio.Event
) -> Report:
    """Connect to Cassandra (and to Pub/Sub, for the dead letters) and check, again every
    second until everything matches or ``--wait`` runs out."""
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(cassandra_session(settings.cassandra))
        dead_letters = None
        if args.dead_letter_subscription:
            http = await stack.enter_async_context(http_session())
            pubsub = settings.pubsub
            source = PubSubSubscription(http, pubsub.project_id, args.dead_letter_subscription)
            dead_letters = DeadLetterCheck.of(SubscriptionDeadLetters(source), pubsub)
        deadline = time.monotonic() + args.wait
        while True:
            report = await _check_once(session, settings.cassandra, index, dead_letters)
            if report.ok or time.monotonic() >= deadline or stop.is_set():
                return report
            await asyncio.sleep(1.0)


def _unreadable(subscription: str, exc: aiohttp.ClientError) -> str:
    """Why the dead letters could not be read: a status and reason, never request headers."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"cannot read subscription {subscription}: {exc.status} {exc.message}"
    return f"cannot read subscription {subscription}: {type(exc).__name__}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = load_settings(ServiceSettings)
    configure_logging(settings.log, service="verify")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ecom-verify-", dir=args.index_dir) as scratch:
        index = _load(args.manifest, Path(scratch), named=bool(args.dead_letter_subscription))
        if isinstance(index, str):
            sys.stderr.write(f"ecom-verify: {index}\n")
            return EXIT_USAGE
        index_seconds = time.monotonic() - began
        log.info(
            "verify.indexed",
            lines=index.totals.published,
            seconds=round(index_seconds, 1),
            peak_rss_bytes=peak_rss_bytes(),
        )

        async def run(stop: asyncio.Event) -> int:
            try:
                report = await _checked(settings, index, args, stop)
            except aiohttp.ClientError as exc:  # only the dead-letter check speaks HTTP
                sys.stderr.write(
                    f"ecom-verify: {_unreadable(args.dead_letter_subscription, exc)}\n"
                )
                return EXIT_USAGE
            log.info("verify.checked", ok=report.ok, peak_rss_bytes=peak_rss_bytes())
            seconds = time.monotonic() - began
            text = (
                as_json(report, seconds=seconds, index_seconds=index_seconds)
                if args.json
                else render(report)
            )
            sys.stdout.write(text + "\n")
            return 0 if report.ok else 1

        try:
            return run_async(run)
        finally:
            index.close()


if __name__ == "__main__":
    sys.exit(main())
