"""``python -m ecom_dlq_worker [--once]``: a pass now and exit, or a pass every interval."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict

from ecom_dlq_worker.reconcile import PassReport, Reconciler
from ecom_dlq_worker.settings import DlqWorkerSettings
from ecom_shared.backoff import wait_or_stop
from ecom_shared.logs import configure_logging, get_logger
from ecom_shared.resources import open_resources
from ecom_shared.service import load_settings, run_async

log = get_logger(__name__)


def _log_report(report: PassReport) -> None:
    fields = asdict(report)
    if report.stale:
        log.warning("dlq.pass_done", **fields)
    else:
        log.info("dlq.pass_done", **fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecom-dlq-worker", description=__doc__)
    parser.add_argument("--once", action="store_true", help="run one pass, print its summary, exit")
    args = parser.parse_args(argv)
    settings = load_settings(DlqWorkerSettings)
    configure_logging(settings.log, service="dlq-worker")

    async def serve(stop: asyncio.Event) -> int:
        async with open_resources(settings) as resources:
            reconciler = Reconciler(resources.orders, resources.dlq, settings.worker)
            while True:
                try:
                    report = await reconciler.run_pass(stop)
                except Exception as exc:
                    if args.once:
                        raise
                    log.exception("dlq.pass_failed", error=repr(exc)[:300])
                else:
                    _log_report(report)
                    if args.once:
                        return 1 if report.failed else 0
                if await wait_or_stop(stop, settings.worker.interval_seconds):
                    return 0

    return run_async(serve)


if __name__ == "__main__":
    raise SystemExit(main())
