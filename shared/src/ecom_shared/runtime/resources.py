"""The resources a service holds, opened in one exit stack and closed in reverse order.

:func:`open_store` opens what a service of the tables alone needs (the DLQ worker);
:func:`open_resources` adds Pub/Sub for the services of the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from ecom_shared.cassandra.schema import check_schema
from ecom_shared.cassandra.session import Session, cassandra_session
from ecom_shared.cassandra.store import (
    CassandraDlq,
    CassandraOrders,
    DlqTable,
    OrdersTable,
    StoreProbe,
)
from ecom_shared.cassandra.timed_store import TimedDlq, TimedOrders
from ecom_shared.observability.health import Telemetry, serve_http
from ecom_shared.observability.metrics import StoreMetrics
from ecom_shared.pubsub.client import PubSubPublisher, PubSubSubscription, http_session
from ecom_shared.pubsub.deadletter import DeadLetters
from ecom_shared.settings import ServiceSettings, StoreServiceSettings


@dataclass(frozen=True, slots=True)
class Store:
    """Cassandra's session, the tables (timed), the store probe and the telemetry."""

    cql: Session
    orders: OrdersTable
    dlq: DlqTable
    telemetry: Telemetry
    store_probe: StoreProbe

    async def probe(self) -> None:
        """Raise unless Cassandra can take the pipeline's writes and reads now, at the
        configured consistency (the consumers' dependency gate and the DLQ worker call this)."""
        await self.store_probe()


@dataclass(frozen=True, slots=True)
class Resources(Store):
    """The store, and Pub/Sub: the publisher, the dead-letter topic, subscriptions."""

    settings: ServiceSettings
    http: aiohttp.ClientSession
    publisher: PubSubPublisher
    dead_letters: DeadLetters

    def subscription(self, name: str) -> PubSubSubscription:
        return PubSubSubscription(self.http, self.settings.pubsub.project_id, name)


@contextlib.asynccontextmanager
async def open_store(
    settings: StoreServiceSettings, *, stop: asyncio.Event | None = None, serve: bool = False
) -> AsyncIterator[Store]:
    """Connect to Cassandra and prepare every statement; close all on exit.

    With ``serve``, metrics and health are served first (``settings.http``), so probes answer
    while Cassandra is still being reached: ``/readyz`` says "starting" until all is open, and
    "stopping" once ``stop`` is set.
    """
    telemetry = Telemetry.create(stop)
    async with contextlib.AsyncExitStack() as stack:
        if serve:
            await stack.enter_async_context(serve_http(settings.http, telemetry))
        cql = await stack.enter_async_context(cassandra_session(settings.cassandra))
        await check_schema(cql, settings.cassandra)  # tables usable, before any write
        store_metrics = StoreMetrics(telemetry.registry)
        orders = await CassandraOrders.prepare(cql, settings.cassandra)
        dlq = await CassandraDlq.prepare(cql, settings.cassandra)
        store_probe = await StoreProbe.prepare(cql, settings.cassandra)
        telemetry.health.started()
        yield Store(
            cql=cql,
            orders=TimedOrders(orders, store_metrics),
            dlq=TimedDlq(dlq, store_metrics),
            telemetry=telemetry,
            store_probe=store_probe,
        )


@contextlib.asynccontextmanager
async def open_resources(
    settings: ServiceSettings, *, stop: asyncio.Event | None = None, serve: bool = False
) -> AsyncIterator[Resources]:
    """The store (:func:`open_store`) and a Pub/Sub client session; all closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(http_session())
        store = await stack.enter_async_context(open_store(settings, stop=stop, serve=serve))
        publisher = PubSubPublisher(
            http, settings.pubsub.project_id, timeout=settings.pubsub.request_timeout_seconds
        )
        yield Resources(
            cql=store.cql,
            orders=store.orders,
            dlq=store.dlq,
            telemetry=store.telemetry,
            store_probe=store.store_probe,
            settings=settings,
            http=http,
            publisher=publisher,
            dead_letters=DeadLetters(publisher, settings.pubsub.dead_letter_topic),
        )
