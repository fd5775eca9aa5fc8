"""Idempotent set-up of topics, subscriptions and the schema: ``ecom-setup``.

Every subscription that a consumer reads gets a dead-letter policy as a safety net for
messages that keep failing for reasons the code did not foresee. ``dlq-payments`` and
``dead-letter`` get a subscription of their own so that what is published there is kept
(Pub/Sub drops messages published to a topic with no subscription).

A subscription that exists already is read back and compared with what set-up would have
created, and left as it is: each difference is one line (``pubsub.subscription_differs``),
a warning for an ack deadline or a delivery limit of its own (the consumers read a
subscription's real ack deadline at start and renew leases for it), an error for a
subscription on another topic, without a dead-letter policy or with another dead-letter topic
(messages would go elsewhere, or one that keeps failing would be delivered for ever). Set-up
still succeeds: subscriptions that the apps' own deployment made are the operator's to change
(``docs/original-names.md`` shows how).

Tables that exist already are checked before anything is written
(``ecom_shared.cassandra.schema``): one that cannot hold what the product writes stops set-up
with one line naming each differing column (``service.refused``), and exit code 1; one that
lacks columns of ours gets them added.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from gcloud.aio.pubsub import PublisherClient, SubscriberClient

from ecom_shared.cassandra.schema import apply_schema
from ecom_shared.cassandra.session import cassandra_session
from ecom_shared.observability.logs import configure_logging, get_logger
from ecom_shared.pubsub.client import http_session
from ecom_shared.runtime.service import load_settings, run_async
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


@dataclass(frozen=True, slots=True)
class Difference:
    """How an existing subscription differs from what set-up would have created."""

    subscription: str
    field: str
    expected: object
    actual: object
    serious: bool  # messages go elsewhere, or a failing one is delivered for ever
    consequence: str


def subscription_differences(
    spec: SubscriptionSpec, settings: PubSubSettings, actual: Mapping[str, Any]
) -> list[Difference]:
    """Each way ``actual`` (a GET's reply) differs from what set-up would have created."""
    found: list[Difference] = []
    topic = PublisherClient.topic_path(settings.project_id, spec.topic)
    if actual.get("topic") != topic:
        why = "the consumers would read another stream than the one set up here"
        found.append(Difference(spec.name, "topic", topic, actual.get("topic"), True, why))
    deadline, want = actual.get("ackDeadlineSeconds"), settings.ack_deadline_seconds
    if deadline != want:
        why = "the consumers renew leases for the subscription's own deadline, read at start"
        found.append(Difference(spec.name, "ackDeadlineSeconds", want, deadline, False, why))
    if spec.dead_letter:
        found += _dead_letter_differences(spec, settings, actual.get("deadLetterPolicy") or {})
    return found


def _dead_letter_differences(
    spec: SubscriptionSpec, settings: PubSubSettings, policy: Mapping[str, Any]
) -> list[Difference]:
    name, field = spec.name, "deadLetterPolicy"
    topic = PublisherClient.topic_path(settings.project_id, settings.dead_letter_topic)
    actual_topic = policy.get("deadLetterTopic")
    if not actual_topic:
        why = "a message that keeps failing for an unforeseen reason is delivered for ever"
        return [Difference(name, field, topic, None, True, why)]
    found: list[Difference] = []
    if actual_topic != topic:
        why = "messages that keep failing go to another topic than the application's dead letters"
        found.append(Difference(name, f"{field}.deadLetterTopic", topic, actual_topic, True, why))
    attempts, want = policy.get("maxDeliveryAttempts"), settings.max_delivery_attempts
    if attempts != want:
        why = "a message that keeps failing is taken out after another number of deliveries"
        found.append(Difference(name, f"{field}.maxDeliveryAttempts", want, attempts, False, why))
    return found


def report_difference(difference: Difference) -> None:
    report = log.error if difference.serious else log.warning
    report(
        "pubsub.subscription_differs",
        name=difference.subscription,
        field=difference.field,
        expected=difference.expected,
        actual=difference.actual,
        consequence=difference.consequence,
        note="left as it is: ecom-setup never changes an existing subscription",
    )


async def ensure_pubsub(
    session: aiohttp.ClientSession, settings: PubSubSettings
) -> list[Difference]:
    """Create the four topics and four subscriptions unless they exist; how the subscriptions
    that existed differ from what set-up would have created (each also logged)."""
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
    found: list[Difference] = []
    for spec in subscription_specs(settings):
        path = SubscriberClient.subscription_path(project, spec.name)
        create = subscriber.create_subscription(
            path, PublisherClient.topic_path(project, spec.topic), subscription_body(spec, settings)
        )
        if not await _tolerate_exists(create, "subscription", spec.name):
            found += await _compare_existing(subscriber, path, spec, settings)
    return found


async def _compare_existing(
    subscriber: SubscriberClient, path: str, spec: SubscriptionSpec, settings: PubSubSettings
) -> list[Difference]:
    """Read an existing subscription back and report how it differs; never change it."""
    try:
        actual = await subscriber.get_subscription(path)
    except aiohttp.ClientError as exc:  # the report is a courtesy: set-up is done anyway
        log.warning("pubsub.subscription_unread", name=spec.name, error=_short(exc))
        return []
    differences = subscription_differences(spec, settings, actual)
    for difference in differences:
        report_difference(difference)
    return differences


def _short(exc: aiohttp.ClientError) -> str:
    """Status and reason of an HTTP error, never its request headers (they hold the token)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"{exc.status} {exc.message}"
    return type(exc).__name__


async def _tolerate_exists(call: Any, kind: str, name: str) -> bool:
    """True when ``call`` created it, False when it existed."""
    try:
        await call
    except aiohttp.ClientResponseError as exc:
        if exc.status != _ALREADY_EXISTS:
            raise
        log.info("pubsub.exists", kind=kind, name=name)
        return False
    log.info("pubsub.created", kind=kind, name=name)
    return True


async def provision(
    settings: ServiceSettings, *, pubsub: bool = True, schema: bool = True
) -> list[Difference]:
    """Set up what is asked for; the schema first, so that a table the product cannot use
    stops set-up before it creates anything, topics included. Returns how existing
    subscriptions differ from what set-up would have created."""
    if schema:
        async with cassandra_session(settings.cassandra) as cql:
            await apply_schema(cql, settings.cassandra)
    if not pubsub:
        return []
    async with http_session() as session:
        return await ensure_pubsub(session, settings.pubsub)


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
