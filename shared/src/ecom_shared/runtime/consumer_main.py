"""The ``main()`` both consumers share: settings, logging, resources, the loop, exit code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ecom_shared.observability.logs import configure_logging
from ecom_shared.runtime.consumer import Consumer, Handler
from ecom_shared.runtime.faults import CrashHook
from ecom_shared.runtime.resources import Resources, open_resources
from ecom_shared.runtime.service import run_async
from ecom_shared.settings import ConsumerServiceSettings, PubSubSettings

HandlerFactory = Callable[[Resources, CrashHook], Handler]
"""Builds the handler from the open resources and the process's crash hook (tests only)."""
SubscriptionOf = Callable[[PubSubSettings], str]


def consumer_main(
    *,
    service: str,
    settings: ConsumerServiceSettings,
    subscription_of: SubscriptionOf,
    build_handler: HandlerFactory,
) -> int:
    configure_logging(settings.log, service=service)

    async def serve(stop: asyncio.Event) -> int:
        crash = CrashHook.from_settings(settings.faults)
        async with open_resources(settings, stop=stop, serve=True) as resources:
            consumer = Consumer(
                resources.subscription(subscription_of(settings.pubsub)),
                build_handler(resources, crash),
                resources.dead_letters,
                settings.consumer,
                ack_deadline_seconds=settings.pubsub.ack_deadline_seconds,
                probe=resources.probe,
                telemetry=resources.telemetry,
                crash=crash,
            )
            await consumer.run(stop)
        return 0

    return run_async(serve)
