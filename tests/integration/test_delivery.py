"""Delivery on the real emulator: set-up, the subscriptions' safety net, and acks at volume."""

from __future__ import annotations

import os
import time

from gcloud.aio.pubsub import SubscriberClient

from ecom_devtools.local.drain import drain_now
from ecom_order_consumer.handler import OrderHandler
from ecom_shared.pubsub.client import OutgoingMessage, ReceivedMessage
from ecom_shared.pubsub.provision import provision
from ecom_shared.runtime.consumer import Consumer
from ecom_shared.runtime.resources import Resources
from ecom_shared.settings import ServiceSettings
from tests.integration.conftest import RunConsumer, acked
from tests.integration.test_pipeline import drain
from tests.polling import eventually
from tests.unit.shared.test_events import ORDER, body


async def test_setup_is_idempotent_and_sets_dead_letter_policies(
    resources: Resources, settings: ServiceSettings
) -> None:
    await provision(settings)  # a second time: nothing fails, nothing changes
    client = SubscriberClient(session=resources.http)
    p = settings.pubsub
    for name in (p.orders_subscription, p.payments_subscription):
        sub = await client.get_subscription(SubscriberClient.subscription_path(p.project_id, name))
        policy = sub["deadLetterPolicy"]
        assert policy["deadLetterTopic"].endswith(f"/topics/{p.dead_letter_topic}")
        assert policy["maxDeliveryAttempts"] == p.max_delivery_attempts
        assert sub["ackDeadlineSeconds"] == p.ack_deadline_seconds


async def test_a_message_that_always_fails_leaves_the_stream_through_the_policy(
    infra: object, run_consumer: RunConsumer, resources: Resources
) -> None:
    """A failure nobody foresaw is retried, then forwarded by the subscription's policy."""
    p = resources.settings.pubsub
    attempts: list[int | None] = []

    async def always_broken(message: ReceivedMessage) -> None:
        attempts.append(message.delivery_attempt)
        raise RuntimeError("a bug that this message triggers every time")

    await resources.publisher.publish(p.orders_topic, [OutgoingMessage(body(ORDER), {})])
    async with run_consumer(p.orders_subscription, always_broken):
        await eventually(lambda: _at_least(attempts, p.max_delivery_attempts), timeout=120)
        [forwarded] = await drain(resources, p.dead_letter_subscription, 1)
    assert forwarded.data == body(ORDER)
    assert forwarded.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(
        p.max_delivery_attempts
    )
    assert attempts[:3] == [1, 2, 3]


async def _at_least(items: list[int | None], count: int) -> bool:
    return len(items) >= count


async def test_thousands_of_messages_are_acked_once_without_redelivery(
    resources: Resources, run_consumer: RunConsumer
) -> None:
    p = resources.settings.pubsub
    total = 5000
    messages = [OutgoingMessage(body(ORDER, order_id=i), {}) for i in range(1, total + 1)]
    await resources.publisher.publish(p.orders_topic, messages)
    async with run_consumer(
        p.orders_subscription, OrderHandler(resources.orders, resources.dlq)
    ) as consumer:
        await eventually(lambda: acked(consumer, total), timeout=120)
        # A lost ack shows as a redelivery once the lease it ended has run out, at most one ack
        # deadline after the last ack: the consumer must pull nothing for longer than that.
        await quiet(consumer, p.ack_deadline_seconds + 2, timeout=120)
    # Then ask the emulator itself: a message whose ack it never got is handed out again now.
    host = os.environ["PUBSUB_EMULATOR_HOST"]
    left = await drain_now(host, p.project_id, p.orders_subscription)
    assert left == [], f"{len(left)} messages came back: their ack was lost"
    assert consumer.stats.received == total  # nothing came back to the consumer either
    assert consumer.stats.retried == 0


async def quiet(consumer: Consumer, seconds: float, *, timeout: float) -> None:
    """Poll until ``consumer`` has received nothing for ``seconds``; fail after ``timeout``."""
    seen, since = consumer.stats.received, time.monotonic()

    def still() -> bool:
        nonlocal seen, since
        if consumer.stats.received != seen:
            seen, since = consumer.stats.received, time.monotonic()
        return time.monotonic() - since >= seconds

    await eventually(still, timeout, what=f"nothing received for {seconds:g} s")
