"""Fixtures on the real services: Cassandra 5.0 and the Pub/Sub emulator, started once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from ecom_shared.pubsub.client import OutgoingMessage
from ecom_shared.pubsub.provision import provision
from ecom_shared.runtime.consumer import Consumer, Handler, Pacing
from ecom_shared.runtime.resources import Resources, open_resources
from ecom_shared.settings import ConsumerSettings, ServiceSettings
from tests.infra import InfraUnderTest
from tests.polling import eventually

FAST_CONSUMER = ConsumerSettings(
    pullers=2, max_messages=200, retry_delay_seconds=1, shutdown_grace_seconds=10
)
QUICK_PACING = Pacing(backoff_initial_seconds=0.2, backoff_max_seconds=1)


@pytest.fixture
async def settings(infra: InfraUnderTest) -> ServiceSettings:
    """Fresh topics, subscriptions and keyspace for one test, already set up."""
    test_settings = infra.settings()
    await provision(test_settings)
    return test_settings


@pytest.fixture
async def resources(settings: ServiceSettings) -> AsyncIterator[Resources]:
    async with open_resources(settings) as opened:
        yield opened


RunConsumer = Callable[[str, Handler], contextlib.AbstractAsyncContextManager[Consumer]]


@pytest.fixture
def run_consumer(resources: Resources) -> RunConsumer:
    """Run the real consumer loop over a subscription in this process; stop it on exit."""

    @contextlib.asynccontextmanager
    async def running(subscription: str, handler: Handler) -> AsyncIterator[Consumer]:
        consumer = Consumer(
            resources.subscription(subscription),
            handler,
            resources.dead_letters,
            FAST_CONSUMER,
            ack_deadline_seconds=resources.settings.pubsub.ack_deadline_seconds,
            probe=resources.probe,
            pacing=QUICK_PACING,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        try:
            yield consumer
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    return running


async def publish(
    res: Resources, topic: str, bodies: list[bytes], attributes: dict[str, str]
) -> None:
    await res.publisher.publish(topic, [OutgoingMessage(b, attributes) for b in bodies])


async def acked(consumer: Consumer, count: int) -> bool:
    return consumer.stats.acked >= count


async def send_and_wait(
    res: Resources,
    consumer: Consumer,
    topic: str,
    bodies: list[bytes],
    attributes: dict[str, str],
) -> None:
    """Publish ``bodies`` and wait until ``consumer`` has acked as many more messages."""
    target = consumer.stats.acked + len(bodies)
    await publish(res, topic, bodies, attributes)
    await eventually(lambda: acked(consumer, target))
