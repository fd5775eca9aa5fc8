"""``python -m ecom_dlq_worker [--once]``: a pass now and exit, or a pass every interval."""

from __future__ import annotations

import argparse
import asyncio

from ecom_dlq_worker.reconcile import Reconciler
from ecom_dlq_worker.settings import DlqWorkerSettings
from ecom_dlq_worker.worker import DlqWorker
from ecom_shared.observability.logs import configure_logging
from ecom_shared.runtime.faults import CrashHook
from ecom_shared.runtime.resources import open_store
from ecom_shared.runtime.service import load_settings, run_async


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecom-dlq-worker", description=__doc__)
    parser.add_argument("--once", action="store_true", help="run one pass, print its summary, exit")
    args = parser.parse_args(argv)
    settings = load_settings(DlqWorkerSettings)
    configure_logging(settings.log, service="dlq-worker")

    async def serve(stop: asyncio.Event) -> int:
        # One pass is not a long-running service: --once serves no metrics or health port.
        async with open_store(settings, stop=stop, serve=not args.once) as store:
            worker = DlqWorker(
                Reconciler(
                    store.orders,
                    store.dlq,
                    settings.worker,
                    crash=CrashHook.from_settings(settings.faults),
                ),
                settings.worker,
                store.telemetry,
                store.probe,
            )
            if args.once:
                report = await worker.run_pass(stop)
                return 1 if report.failed else 0
            return await worker.run(stop)

    return run_async(serve)


if __name__ == "__main__":
    raise SystemExit(main())
