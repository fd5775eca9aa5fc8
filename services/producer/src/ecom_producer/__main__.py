"""``ecom-producer``: publish a generated stream of orders and payments.

Options come from ``ECOM_PRODUCER__*`` variables; flags override them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path
from typing import Final

from ecom_producer.publish import PhasePublisher, RateLimiter, Tally
from ecom_producer.settings import ProducerOptions, ProducerSettings
from ecom_producer.stream import StreamOptions, StreamPlanner, StreamShares
from ecom_shared.events import EventType
from ecom_shared.observability.health import Telemetry, serve_http
from ecom_shared.observability.logs import configure_logging, get_logger
from ecom_shared.observability.metrics import ProducerMetrics
from ecom_shared.pubsub.client import PubSubPublisher, http_session
from ecom_shared.runtime.service import load_settings, run_async
from ecom_verifier.manifest import open_manifest

log = get_logger(__name__)

PROGRESS_SECONDS: Final = 2.0
"""Interval of the ``producer.progress`` lines."""


def parse_args(argv: list[str] | None, defaults: ProducerOptions) -> ProducerOptions:
    parser = argparse.ArgumentParser(prog="ecom-producer", description=__doc__)
    parser.add_argument(
        "--orders", type=int, help=f"orders to generate, 0 = forever ({defaults.orders})"
    )
    parser.add_argument(
        "--rate", type=float, help=f"messages per second, 0 = unlimited ({defaults.rate})"
    )
    parser.add_argument("--seed", type=int, help=f"random seed ({defaults.seed})")
    parser.add_argument("--id-base", type=int, help="first order id (default: from the clock)")
    parser.add_argument("--manifest", type=Path, help="append a JSON line per published message")
    for share in StreamShares.model_fields:
        parser.add_argument(
            f"--{share.replace('_', '-')}",
            type=float,
            dest=share,
            help=f"share in [0, 1] ({getattr(defaults, share)})",
        )
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    return ProducerOptions.model_validate({**defaults.model_dump(), **given})


def stream_options(options: ProducerOptions) -> StreamOptions:
    # Ids derived from the clock keep separate runs against one table apart.
    id_base = options.id_base or int(time.time()) * 1000
    shares = options.model_dump(include=set(StreamShares.model_fields))
    return StreamOptions(seed=options.seed, id_base=id_base, **shares)


async def produce(settings: ProducerSettings, options: ProducerOptions, stop: asyncio.Event) -> int:
    planner = StreamPlanner(stream_options(options))
    limiter = RateLimiter(options.rate)
    tally = Tally()
    topics = {
        EventType.ORDER: settings.pubsub.orders_topic,
        EventType.PAYMENT: settings.pubsub.payments_topic,
    }
    chunk_orders = 500 if options.rate == 0 else max(1, min(500, int(options.rate // 8)))
    remaining = options.orders or None
    telemetry = Telemetry.create(stop)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(serve_http(settings.http, telemetry))
        http = await stack.enter_async_context(http_session())
        manifest = (
            stack.enter_context(open_manifest(options.manifest)) if options.manifest else None
        )
        phases = PhasePublisher(
            PubSubPublisher(http, settings.pubsub.project_id),
            topics,
            manifest,
            tally,
            metrics=ProducerMetrics(telemetry.registry),
            health=telemetry.health,
        )
        telemetry.health.started()
        last_report = time.monotonic()
        while (remaining is None or remaining > 0) and not stop.is_set():
            size = chunk_orders if remaining is None else min(chunk_orders, remaining)
            for phase in planner.chunk(size).phases():
                await limiter.admit(len(phase))
                await phases.publish(phase)
            if remaining is not None:
                remaining -= size
            if time.monotonic() - last_report >= PROGRESS_SECONDS:
                log.info("producer.progress", **tally.as_fields())
                last_report = time.monotonic()
    log.info("producer.done", **tally.as_fields(), manifest=str(options.manifest or ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    settings = load_settings(ProducerSettings)
    options = parse_args(argv, settings.producer)
    configure_logging(settings.log, service="producer")
    return run_async(lambda stop: produce(settings, options, stop))


if __name__ == "__main__":
    raise SystemExit(main())
