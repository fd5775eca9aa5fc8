"""One pass over the DLQ table: join, complete, clear; count what still waits.

Each step is idempotent, so several workers may run at once and any of them may be killed at
any point: a payment written to its row but not yet removed from the DLQ is written again
(same values, the same version's timestamp) on the next pass, then removed; the removal
deletes only that version, so a newer one parked meanwhile waits for the next pass.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from ecom_dlq_worker.settings import WorkerSettings
from ecom_shared.cassandra.store import DlqTable, OrdersTable, ParkedPayment, UnreadableRow
from ecom_shared.clock import Clock, utc_now
from ecom_shared.completion import complete_parked
from ecom_shared.error_text import describe_error
from ecom_shared.observability.logs import get_logger
from ecom_shared.policy import is_transient
from ecom_shared.runtime.faults import NO_CRASH, CrashHook

log = get_logger(__name__)

STALE_IDS_REPORTED: Final = 20
"""Stale payments a pass names (``order_id/payment_id``) in its summary; all are counted."""


@dataclass(slots=True)
class PassReport:
    scanned: int = 0
    reconciled: int = 0
    waiting: int = 0
    stale: int = 0
    stubs_removed: int = 0
    unreadable: int = 0  # rows that cannot be used: reported, skipped, left in place
    failed: int = 0
    seconds: float = 0.0
    oldest_age_seconds: float = 0.0  # of the payments still waiting; 0 when none waits
    stale_ids: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(
        self,
        orders: OrdersTable,
        dlq: DlqTable,
        settings: WorkerSettings,
        clock: Clock = utc_now,
        crash: CrashHook = NO_CRASH,
    ) -> None:
        self._orders = orders
        self._dlq = dlq
        self._settings = settings
        self._clock = clock
        self._crash = crash  # the fault-injection tests' hook (ecom_shared.runtime.faults)

    async def run_pass(self, stop: asyncio.Event | None = None) -> PassReport:
        """Scan the whole DLQ once. Stops taking new rows when ``stop`` is set."""
        report = PassReport()
        started = time.monotonic()
        slots = asyncio.Semaphore(self._settings.concurrency)
        async with asyncio.TaskGroup() as group:
            async for parked in self._dlq.scan(
                self._settings.page_size, self._settings.token_segments
            ):
                if stop is not None and stop.is_set():
                    break
                report.scanned += 1
                if isinstance(parked, UnreadableRow):
                    _report_unreadable(parked, report)
                    continue
                await slots.acquire()
                group.create_task(self._guarded(parked, report, slots))
        report.seconds = round(time.monotonic() - started, 3)
        return report

    async def _guarded(
        self, parked: ParkedPayment, report: PassReport, slots: asyncio.Semaphore
    ) -> None:
        try:
            await self._one(parked, report)
        except Exception as exc:  # noqa: BLE001 - one row's failure must not end the pass
            report.failed += 1
            emit = log.warning if is_transient(exc) else log.error
            emit(
                "dlq.row_failed",
                order_id=parked.order_id,
                payment_id=parked.payment_id,
                outcome="retry_next_pass",
                error=describe_error(exc),
            )
        finally:
            slots.release()

    async def _one(self, parked: ParkedPayment, report: PassReport) -> None:
        now = self._clock()
        if parked.payment is None or await self._orders.order_exists(parked.order_id):
            if await complete_parked(
                self._orders, self._dlq, parked, "dlq", now, crash=self._crash
            ):
                report.reconciled += 1
            else:
                report.stubs_removed += 1
            return
        await self._dlq.record_attempt(parked, now)
        report.waiting += 1
        if parked.parked_at is None:
            return
        age = now - parked.parked_at
        report.oldest_age_seconds = max(report.oldest_age_seconds, round(age.total_seconds(), 3))
        if age > timedelta(seconds=self._settings.max_age_seconds):
            report.stale += 1
            if len(report.stale_ids) < STALE_IDS_REPORTED:
                report.stale_ids.append(f"{parked.order_id}/{parked.payment_id}")


def _report_unreadable(row: UnreadableRow, report: PassReport) -> None:
    """One line per unreadable row and pass: it waits for someone to repair or delete it."""
    report.unreadable += 1
    log.error(
        "dlq.row_unreadable",
        order_id=row.order_id,
        payment_id=row.payment_id,
        problem=row.problem,
        outcome="skipped",
    )
