"""Pub/Sub access: one HTTP session, the publisher, and the received-message type.

gcloud-aio talks to the emulator when ``PUBSUB_EMULATOR_HOST`` is set and to Google Cloud
Pub/Sub with Application Default Credentials otherwise; nothing here needs to know which.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

import aiohttp
from gcloud.aio.pubsub import PublisherClient, PubsubMessage, SubscriberClient
from gcloud.aio.pubsub.subscriber_client import init_api_root

from ecom_shared.error_text import describe_error
from ecom_shared.errors import PublishFailed

MAX_MESSAGES_PER_PUBLISH: Final = 1000  # the most one publish request may carry
MAX_BYTES_PER_PUBLISH: Final = (
    8 * 1024 * 1024
)  # under the 10 MB request limit, with room for base64
MAX_ACK_IDS_PER_REQUEST: Final = 1000


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A pulled message, independent of the client library's class."""

    ack_id: str
    message_id: str
    publish_time: datetime
    data: bytes | None
    attributes: dict[str, str]
    delivery_attempt: int | None = None


class Publisher(Protocol):
    """Publishes messages to a topic; returns only when Pub/Sub has accepted all of them."""

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> list[str]: ...


class Subscription(Protocol):
    """The pull side of one subscription, as the consumer loop needs it."""

    name: str

    async def pull(self, max_messages: int, timeout: float) -> list[ReceivedMessage]: ...

    async def pull_now(self, max_messages: int) -> list[ReceivedMessage]:
        """A pull the server answers at once, with what it has (possibly nothing)."""
        ...

    async def ack(self, ack_ids: Sequence[str]) -> None: ...

    async def extend(self, ack_ids: Sequence[str], seconds: int) -> None: ...

    async def read_ack_deadline(self) -> int:
        """The ack deadline the subscription has in Pub/Sub (raises when it cannot be read)."""
        ...


@contextlib.asynccontextmanager
async def http_session(*, connections: int = 64) -> AsyncIterator[aiohttp.ClientSession]:
    """The one aiohttp session a process uses for Pub/Sub; closed on exit."""
    connector = aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


class PubSubPublisher:
    """Publishes in requests of at most 1,000 messages and 8 MB."""

    def __init__(
        self, session: aiohttp.ClientSession, project_id: str, *, timeout: float = 30.0
    ) -> None:
        self._client = PublisherClient(session=session)
        self._project = project_id
        self._timeout = timeout

    def topic_path(self, topic: str) -> str:
        return PublisherClient.topic_path(self._project, topic)

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> list[str]:
        ids: list[str] = []
        for chunk in _chunks(messages):
            wire = [PubsubMessage(m.data, **m.attributes) for m in chunk]
            try:
                reply = await self._client.publish(
                    self.topic_path(topic), wire, timeout=int(self._timeout)
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Told by describe_error only: a chained cause would print its URL's query.
                raise PublishFailed(f"publish to {topic} failed: {describe_error(exc)}") from None
            got = reply.get("messageIds", [])
            if len(got) != len(chunk):
                raise PublishFailed(f"publish to {topic}: {len(got)} ids for {len(chunk)} messages")
            ids.extend(got)
        return ids


def _chunks(messages: Sequence[OutgoingMessage]) -> list[Sequence[OutgoingMessage]]:
    chunks: list[Sequence[OutgoingMessage]] = []
    start, size = 0, 0
    for i, message in enumerate(messages):
        weight = len(message.data) + sum(len(k) + len(v) for k, v in message.attributes.items())
        if i > start and (
            i - start >= MAX_MESSAGES_PER_PUBLISH or size + weight > MAX_BYTES_PER_PUBLISH
        ):
            chunks.append(messages[start:i])
            start, size = i, 0
        size += weight
    if start < len(messages):
        chunks.append(messages[start:])
    return chunks


_JSON: Final = {"Content-Type": "application/json"}


FIRST_PUBLISHED: Final = "ecom-first-published"
"""The attribute ``ecom-redrive`` puts on a message it republishes: when the message was first
published (ISO 8601). A message that carries it is taken as published then, so a redrive ranks
the message's version where its first publication did, exactly as a late redelivery would: it
cannot undo a version published in the meantime."""


def received_message(raw: Mapping[str, Any]) -> ReceivedMessage:
    """A ``ReceivedMessage`` from one element of a pull reply's ``receivedMessages``."""
    message = raw["message"]
    body = message.get("data")
    attributes = message.get("attributes") or {}
    published = datetime.fromisoformat(message["publishTime"])
    return ReceivedMessage(
        ack_id=raw["ackId"],
        message_id=message["messageId"],
        publish_time=first_published(attributes.get(FIRST_PUBLISHED), published),
        data=None if body is None else base64.b64decode(body),
        attributes=attributes,
        delivery_attempt=raw.get("deliveryAttempt"),
    )


def first_published(claimed: str | None, published: datetime) -> datetime:
    """The :data:`FIRST_PUBLISHED` time when it is a real instant no later than this
    publication, else ``published`` (a malformed or future claim changes nothing)."""
    if claimed is None:
        return published
    try:
        first = datetime.fromisoformat(claimed)
    except ValueError:
        return published
    if first.tzinfo is None or first > published:
        return published
    return first


class PubSubSubscription:
    """Pull, ack and lease extension on one subscription, over gcloud-aio's REST client."""

    def __init__(self, session: aiohttp.ClientSession, project_id: str, name: str) -> None:
        self._client = SubscriberClient(session=session)
        self.name = name
        self._path = SubscriberClient.subscription_path(project_id, name)
        self._is_emulator, api_root = init_api_root(None)
        self._pull_url = f"{api_root}/{self._path}:pull"

    async def pull(self, max_messages: int, timeout: float) -> list[ReceivedMessage]:
        """One long poll: the server answers when messages come or after about 90 s with none.

        ``timeout`` must outlast that wait: a pull abandoned by the client still leases the
        messages the server hands it, which then return only after their ack deadline. The
        request goes through gcloud-aio's session (its token, its error on a bad status); the
        reply is read here, because gcloud-aio 7.0.0 parses ``publishTime`` with ``strptime``
        (slow, as ``ecom_devtools.bench.micro`` shows, and it refuses the nine-digit fractions
        Pub/Sub may send).
        """
        response = await self._client.session.post(
            self._pull_url,
            data=json.dumps({"maxMessages": max_messages}).encode(),
            headers=await self._headers(),
            timeout=max(1, int(timeout)),
        )
        reply = await response.json()
        return [received_message(raw) for raw in reply.get("receivedMessages", ())]

    async def pull_now(self, max_messages: int) -> list[ReceivedMessage]:
        """What the server hands out at once, without waiting for messages (``returnImmediately``:
        deprecated by Pub/Sub, and it may answer empty while messages wait, so callers that
        must see everything pull until several answers in a row were empty). For tools that
        read what is there now; the consumers long-poll with :meth:`pull`."""
        body = {"maxMessages": max_messages, "returnImmediately": True}
        response = await self._client.session.post(
            self._pull_url,
            data=json.dumps(body).encode(),
            headers=await self._headers(),
            timeout=30,
        )
        reply = await response.json()
        return [received_message(raw) for raw in reply.get("receivedMessages", ())]

    async def _headers(self) -> dict[str, str]:
        if self._is_emulator:
            return _JSON
        return {**_JSON, "Authorization": f"Bearer {await self._client.token.get()}"}

    async def ack(self, ack_ids: Sequence[str]) -> None:
        for start in range(0, len(ack_ids), MAX_ACK_IDS_PER_REQUEST):
            chunk = list(ack_ids[start : start + MAX_ACK_IDS_PER_REQUEST])
            await self._client.acknowledge(self._path, chunk)

    async def extend(self, ack_ids: Sequence[str], seconds: int) -> None:
        """Set the ack deadline of these messages to ``seconds`` from now (0 redelivers at once)."""
        for start in range(0, len(ack_ids), MAX_ACK_IDS_PER_REQUEST):
            chunk = list(ack_ids[start : start + MAX_ACK_IDS_PER_REQUEST])
            await self._client.modify_ack_deadline(self._path, chunk, seconds)

    async def read_ack_deadline(self) -> int:
        return ack_deadline_of(await self._client.get_subscription(self._path))


def ack_deadline_of(config: Mapping[str, Any]) -> int:
    """``ackDeadlineSeconds`` of a subscription's configuration (a GET's reply)."""
    value = config.get("ackDeadlineSeconds")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"the subscription's ackDeadlineSeconds is {value!r}")
    return value
