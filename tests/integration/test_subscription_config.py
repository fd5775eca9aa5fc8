"""A subscription made before ``ecom-setup`` ran, with its own ack deadline and no dead-letter
policy: set-up reports both and changes nothing; a consumer leases for the real deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from gcloud.aio.pubsub import PublisherClient, SubscriberClient

from ecom_shared.pubsub.client import OutgoingMessage, ReceivedMessage, http_session
from ecom_shared.pubsub.provision import provision
from ecom_shared.runtime.consumer import Consumer
from ecom_shared.runtime.resources import open_resources
from ecom_shared.settings import ServiceSettings
from tests.infra import InfraUnderTest
from tests.integration.conftest import FAST_CONSUMER, QUICK_PACING
from tests.polling import eventually

REAL_DEADLINE = 10  # the subscription's own, the least Pub/Sub allows
SETTING = 60  # what the settings say


async def holds(condition: Callable[[], bool]) -> bool:
    return condition()


async def make_beforehand(settings: ServiceSettings) -> None:
    """The orders topic and subscription as another deployment made them."""
    p = settings.pubsub
    topic = PublisherClient.topic_path(p.project_id, p.orders_topic)
    async with http_session() as session:
        await PublisherClient(session=session).create_topic(topic)
        await SubscriberClient(session=session).create_subscription(
            SubscriberClient.subscription_path(p.project_id, p.orders_subscription),
            topic,
            {"ackDeadlineSeconds": REAL_DEADLINE},
        )


async def test_setup_reports_what_differs_and_the_consumer_leases_for_the_real_deadline(
    infra: InfraUnderTest,
) -> None:
    base = infra.settings()
    settings = base.model_copy(
        update={"pubsub": base.pubsub.model_copy(update={"ack_deadline_seconds": SETTING})}
    )
    p = settings.pubsub
    await make_beforehand(settings)
    with structlog.testing.capture_logs() as logs:
        found = await provision(settings)
    assert {(d.subscription, d.field, d.actual, d.serious) for d in found} == {
        (p.orders_subscription, "ackDeadlineSeconds", REAL_DEADLINE, False),
        (p.orders_subscription, "deadLetterPolicy", None, True),
    }
    reported = [
        (line["log_level"], line["field"])
        for line in logs
        if line["event"] == "pubsub.subscription_differs"
    ]
    assert reported == [("warning", "ackDeadlineSeconds"), ("error", "deadLetterPolicy")]
    assert await provision(settings, schema=False) == found  # nothing was changed

    calls: list[bytes] = []

    async def handler(message: ReceivedMessage) -> None:
        calls.append(message.data or b"")
        if message.data == b"slow":
            await asyncio.sleep(REAL_DEADLINE * 1.5)

    async with open_resources(settings) as res:
        consumer = Consumer(
            res.subscription(p.orders_subscription),
            handler,
            res.dead_letters,
            FAST_CONSUMER,  # two loops: one is free to take whatever Pub/Sub delivers again
            ack_deadline_seconds=SETTING,
            probe=res.probe,
            pacing=QUICK_PACING,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        try:
            await res.publisher.publish(
                p.orders_topic, [OutgoingMessage(b"instant"), OutgoingMessage(b"slow")]
            )
            await eventually(lambda: holds(lambda: len(calls) >= 2 and consumer.stats.acked >= 1))
            assert consumer.ack_deadline_seconds == REAL_DEADLINE
            assert consumer.stats.acked == 1  # the instant one, while the slow one runs
            await eventually(lambda: holds(lambda: consumer.stats.acked >= 2), timeout=60)
            await asyncio.sleep(2)  # a lapsed lease would deliver one of them again by now
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    assert sorted(calls) == [b"instant", b"slow"]  # each handled once: no lease ran out
