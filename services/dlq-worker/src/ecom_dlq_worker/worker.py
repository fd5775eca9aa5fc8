"""The DLQ worker as a service: a pass every interval, its outcome in metrics and readiness.

A pass that reads the table proves Cassandra answers; between passes a probe checks it every
:data:`~ecom_shared.runtime.gate.PROBE_SECONDS`, so ``/readyz`` turns within seconds of an
outage, not at the next pass.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict

from ecom_dlq_worker.reconcile import PassReport, Reconciler
from ecom_dlq_worker.settings import WorkerSettings
from ecom_shared.error_text import describe_error
from ecom_shared.errors import CASSANDRA
from ecom_shared.observability.health import Telemetry
from ecom_shared.observability.logs import get_logger
from ecom_shared.observability.metrics import DlqMetrics
from ecom_shared.runtime.backoff import wait_or_stop
from ecom_shared.runtime.gate import PROBE_SECONDS, Probe

log = get_logger(__name__)


class DlqWorker:
    def __init__(
        self,
        reconciler: Reconciler,
        settings: WorkerSettings,
        telemetry: Telemetry,
        probe: Probe,
        *,
        probe_seconds: float = PROBE_SECONDS,
    ) -> None:
        self._reconciler = reconciler
        self._settings = settings
        self._probe = probe
        self._probe_seconds = probe_seconds  # shorter in tests
        self._health = telemetry.health
        self._health.track(CASSANDRA)
        self._metrics = DlqMetrics(telemetry.registry)

    async def run(self, stop: asyncio.Event) -> int:
        """A pass every ``interval_seconds`` until ``stop``; a failed pass is logged and the
        next one tried. Returns 0."""
        while not stop.is_set():
            try:
                await self.run_pass(stop)
            except Exception as exc:  # a failed pass must not end the worker: log, try again
                log.exception("dlq.pass_failed", error=describe_error(_first_cause(exc)))
            if await self._between_passes(stop):
                break
        return 0

    async def run_pass(self, stop: asyncio.Event | None = None) -> PassReport:
        """One pass, logged and recorded in the metrics and the health state;
        ``ecom_dlq_pass_running`` is 1 from its start until it is logged."""
        self._metrics.running.set(1)
        try:
            return await self._run_pass(stop)
        finally:
            self._metrics.running.set(0)

    async def _run_pass(self, stop: asyncio.Event | None) -> PassReport:
        started = time.perf_counter()
        try:
            report = await self._reconciler.run_pass(stop)
        except Exception as exc:
            self._metrics.passes.labels("failed").inc()
            self._metrics.pass_seconds.observe(time.perf_counter() - started)
            self._health.down(CASSANDRA, f"pass failed: {describe_error(_first_cause(exc))}")
            raise
        self._health.up(CASSANDRA)
        self._metrics.passes.labels("ok").inc()
        self._metrics.pass_seconds.observe(report.seconds)
        self._metrics.reconciled.inc(report.reconciled)
        self._metrics.unreadable.inc(report.unreadable)
        if stop is None or not stop.is_set():  # an interrupted pass saw only part of the table
            self._metrics.parked.set(report.scanned - report.reconciled - report.stubs_removed)
            self._metrics.stale.set(report.stale)
            self._metrics.oldest_age.set(report.oldest_age_seconds)
        _log_report(report)
        return report

    async def _between_passes(self, stop: asyncio.Event) -> bool:
        """Wait out the interval, probing Cassandra meanwhile; True if ``stop`` was set."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.interval_seconds
        while (left := deadline - loop.time()) > 0:
            if await wait_or_stop(stop, min(left, self._probe_seconds)):
                return True
            if deadline - loop.time() > 0:
                await self._check_cassandra()
        return stop.is_set()

    async def _check_cassandra(self) -> None:
        try:
            await self._probe()
        except Exception as exc:  # noqa: BLE001 - any probe failure means "down"
            self._health.down(CASSANDRA, f"probe failed: {describe_error(exc)}")
        else:
            self._health.up(CASSANDRA)


def _first_cause(exc: BaseException) -> BaseException:
    """A failure inside the pass's task group comes wrapped: name what actually failed."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _log_report(report: PassReport) -> None:
    fields = asdict(report)
    if report.stale:
        log.warning("dlq.pass_done", **fields)
    else:
        log.info("dlq.pass_done", **fields)
