"""The topic a source subscription reads: where a dead letter from it is republished.

Pub/Sub says (``subscriptions.get``, in ``roles/pubsub.viewer``), so a subscription of any name
is followed, the apps' own included. When it cannot be asked (no permission, the subscription
deleted), the settings' pairs stand in (``ECOM_PUBSUB__ORDERS_SUBSCRIPTION`` reads
``ECOM_PUBSUB__ORDERS_TOPIC``, and so on); a subscription neither knows is not followed, and its
dead letters stay. Each subscription is asked once per run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import aiohttp
from gcloud.aio.pubsub import SubscriberClient

from ecom_shared.error_text import describe_error
from ecom_shared.observability.logs import get_logger
from ecom_shared.settings import PubSubSettings

log = get_logger(__name__)
_DELETED_TOPIC = "_deleted-topic_"


class TopicOf(Protocol):
    async def __call__(self, subscription: str) -> str | None:
        """The topic (short name, in the run's project) ``subscription`` reads, or None."""
        ...


def settings_topics(pubsub: PubSubSettings) -> dict[str, str]:
    return {
        pubsub.orders_subscription: pubsub.orders_topic,
        pubsub.payments_subscription: pubsub.payments_topic,
        pubsub.dlq_payments_subscription: pubsub.dlq_payments_topic,
    }


class SubscriptionTopics:
    """:class:`TopicOf` from Pub/Sub, with the settings as a fallback; remembered per run."""

    def __init__(
        self, session: aiohttp.ClientSession, project: str, fallback: Mapping[str, str]
    ) -> None:
        self._client = SubscriberClient(session=session)
        self._project = project
        self._fallback = fallback
        self._known: dict[str, str | None] = {}

    async def __call__(self, subscription: str) -> str | None:
        if subscription not in self._known:
            self._known[subscription] = await self._ask(subscription)
        return self._known[subscription]

    async def _ask(self, subscription: str) -> str | None:
        path = SubscriberClient.subscription_path(self._project, subscription)
        try:
            config = await self._client.get_subscription(path)
        except (aiohttp.ClientError, TimeoutError) as exc:
            topic = self._fallback.get(subscription)
            log.warning(
                "redrive.subscription_unread",
                subscription=subscription,
                error=describe_error(exc),
                topic_from_settings=topic,
            )
            return topic
        topic = topic_in_project(str(config.get("topic", "")), self._project)
        if topic is None:
            log.warning(
                "redrive.topic_unknown", subscription=subscription, topic=config.get("topic")
            )
        return topic


def topic_in_project(path: str, project: str) -> str | None:
    """``T`` of ``projects/<project>/topics/T``; None for another project or a deleted topic."""
    prefix = f"projects/{project}/topics/"
    if not path.startswith(prefix) or path == _DELETED_TOPIC:
        return None
    return path.removeprefix(prefix) or None
