"""Idempotent set-up of topics, subscriptions and the schema: ``ecom-setup``.

Every subscription that a consumer reads gets a dead-letter policy as a safety net for
messages that keep failing for reasons the code did not foresee. ``dlq-payments`` and
``dead-letter`` get a subscription of their own so that what is published there is kept
(Pub/Sub drops messages published to a topic with no subscription).

Tables that exist already are checked before anything is written (``ecom_shared.schema``): one
that cannot hold what the product writes stops set-up with one line naming each differing
column (``service.refused``), and exit code 1; one that lacks columns of ours gets them added.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
from gcloud.aio.pubsub import PublisherClient, SubscriberClient

from ecom_shared.cassandra import cassandra_session
from ecom_shared.logs import configure_logging, get_logger
from ecom_shared.pubsub import http_session
from ecom_shared.schema import apply_schema
from ecom_shared.service import load_settings, run_async
from ecom_shared.settings import PubSubSettings, ServiceSettings

log = get_logger(__name__)
_ALREADY_EXISTS = 409
_RETENTION = "604800s"  # seven days, Pub/Sub's maximum for a subscription


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    name: str
    topic: str
    dead_letter: bool


def subscription_specs(settings: PubSubSettings) -> list[SubscriptionSpec]:
    return [
        SubscriptionSpec(settings.orders_subscription, settings.orders_topic, dead_letter=True),
        SubscriptionSpec(settings.payments_subscription, settings.payments_topic, dead_letter=True),
        SubscriptionSpec(settings.dlq_payments_subscription, settings.dlq_payments_topic, False),
        SubscriptionSpec(settings.dead_letter_subscription, settings.dead_letter_topic, False),
    ]


def subscription_body(spec: SubscriptionSpec, settings: PubSubSettings) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ackDeadlineSeconds": settings.ack_deadline_seconds,
        "messageRetentionDuration": _RETENTION,
    }
    if spec.dead_letter:
        body["deadLetterPolicy"] = {
            "deadLetterTopic": PublisherClient.topic_path(
                settings.project_id, settings.dead_letter_topic
            ),
            "maxDeliveryAttempts": settings.max_delivery_attempts,
        }
    return body


async def ensure_pubsub(session: aiohttp.ClientSession, settings: PubSubSettings) -> None:
    """Create the four topics and four subscriptions unless they exist."""
    publisher = PublisherClient(session=session)
    subscriber = SubscriberClient(session=session)
    project = settings.project_id
    topics = [
        settings.orders_topic,
        settings.payments_topic,
        settings.dlq_payments_topic,
        settings.dead_letter_topic,
    ]
    for topic in topics:
        path = PublisherClient.topic_path(project, topic)
        await _tolerate_exists(publisher.create_topic(path), "topic", topic)
    for spec in subscription_specs(settings):
        create = subscriber.create_subscription(
            SubscriberClient.subscription_path(project, spec.name),
            PublisherClient.topic_path(project, spec.topic),
            subscription_body(spec, settings),
        )
        await _tolerate_exists(create, "subscription", spec.name)


async def _tolerate_exists(call: Any, kind: str, name: str) -> None:
    try:
        await call
    except aiohttp.ClientResponseError as exc:
        if exc.status != _ALREADY_EXISTS:
            raise
        log.info("pubsub.exists", kind=kind, name=name)
    else:
        log.info("pubsub.created", kind=kind, name=name)


async def provision(settings: ServiceSettings, *, pubsub: bool = True, schema: bool = True) -> None:
    """Set up what is asked for; the schema first, so that a table the product cannot use
    stops set-up before it creates anything, topics included."""
    if schema:
        async with cassandra_session(settings.cassandra) as cql:
            await apply_schema(cql, settings.cassandra)
    if pubsub:
        async with http_session() as session:
            await ensure_pubsub(session, settings.pubsub)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecom-setup", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["pubsub", "schema"], help="set up only one side")
    args = parser.parse_args(argv)
    settings = load_settings(ServiceSettings)
    configure_logging(settings.log, service="setup")

    async def _run(_: asyncio.Event) -> int:
        await provision(settings, pubsub=args.only != "schema", schema=args.only != "pubsub")
        return 0

    return run_async(_run)
