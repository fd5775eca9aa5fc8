"""The resources a service holds, opened in one exit stack and closed in reverse order."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from ecom_shared.cassandra import Session, cassandra_session, ping
from ecom_shared.deadletter import DeadLetters
from ecom_shared.pubsub import PubSubPublisher, PubSubSubscription, http_session
from ecom_shared.settings import ServiceSettings
from ecom_shared.store import CassandraDlq, CassandraOrders


@dataclass(frozen=True, slots=True)
class Resources:
    settings: ServiceSettings
    cql: Session
    http: aiohttp.ClientSession
    publisher: PubSubPublisher
    orders: CassandraOrders
    dlq: CassandraDlq
    dead_letters: DeadLetters

    def subscription(self, name: str) -> PubSubSubscription:
        return PubSubSubscription(self.http, self.settings.pubsub.project_id, name)

    async def probe(self) -> None:
        """Raise unless Cassandra answers (the consumers' dependency gate calls this)."""
        await ping(self.cql)


@contextlib.asynccontextmanager
async def open_resources(settings: ServiceSettings) -> AsyncIterator[Resources]:
    """Connect to Cassandra and Pub/Sub and prepare every statement; close all on exit."""
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(http_session())
        cql = await stack.enter_async_context(cassandra_session(settings.cassandra))
        publisher = PubSubPublisher(
            http, settings.pubsub.project_id, timeout=settings.pubsub.request_timeout_seconds
        )
        yield Resources(
            settings=settings,
            cql=cql,
            http=http,
            publisher=publisher,
            orders=await CassandraOrders.prepare(cql, settings.cassandra),
            dlq=await CassandraDlq.prepare(cql, settings.cassandra),
            dead_letters=DeadLetters(publisher, settings.pubsub.dead_letter_topic),
        )
