"""The resources a service holds, opened in one exit stack and closed in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from ecom_shared.cassandra import Session, cassandra_session
from ecom_shared.deadletter import DeadLetters
from ecom_shared.health import Telemetry, serve_http
from ecom_shared.metrics import StoreMetrics
from ecom_shared.pubsub import PubSubPublisher, PubSubSubscription, http_session
from ecom_shared.schema import check_schema
from ecom_shared.settings import ServiceSettings
from ecom_shared.store import CassandraDlq, CassandraOrders, DlqTable, OrdersTable, StoreProbe
from ecom_shared.timed_store import TimedDlq, TimedOrders


@dataclass(frozen=True, slots=True)
class Resources:
    settings: ServiceSettings
    cql: Session
    http: aiohttp.ClientSession
    publisher: PubSubPublisher
    orders: OrdersTable
    dlq: DlqTable
    dead_letters: DeadLetters
    telemetry: Telemetry
    store_probe: StoreProbe

    def subscription(self, name: str) -> PubSubSubscription:
        return PubSubSubscription(self.http, self.settings.pubsub.project_id, name)

    async def probe(self) -> None:
        """Raise unless Cassandra can take the pipeline's writes and reads now, at the
        configured consistency (the consumers' dependency gate and the DLQ worker call this)."""
        await self.store_probe()


@contextlib.asynccontextmanager
async def open_resources(
    settings: ServiceSettings, *, stop: asyncio.Event | None = None, serve: bool = False
) -> AsyncIterator[Resources]:
    """Connect to Cassandra and Pub/Sub and prepare every statement; close all on exit.

    With ``serve``, metrics and health are served first (``settings.http``), so probes answer
    while Cassandra is still being reached: ``/readyz`` says "starting" until all is open, and
    "stopping" once ``stop`` is set.
    """
    telemetry = Telemetry.create(stop)
    async with contextlib.AsyncExitStack() as stack:
        if serve:
            await stack.enter_async_context(serve_http(settings.http, telemetry))
        http = await stack.enter_async_context(http_session())
        cql = await stack.enter_async_context(cassandra_session(settings.cassandra))
        await check_schema(cql, settings.cassandra)  # tables usable, before any write
        publisher = PubSubPublisher(
            http, settings.pubsub.project_id, timeout=settings.pubsub.request_timeout_seconds
        )
        store_metrics = StoreMetrics(telemetry.registry)
        orders = await CassandraOrders.prepare(cql, settings.cassandra)
        dlq = await CassandraDlq.prepare(cql, settings.cassandra)
        store_probe = await StoreProbe.prepare(cql, settings.cassandra)
        telemetry.health.started()
        yield Resources(
            settings=settings,
            cql=cql,
            http=http,
            publisher=publisher,
            orders=TimedOrders(orders, store_metrics),
            dlq=TimedDlq(dlq, store_metrics),
            dead_letters=DeadLetters(publisher, settings.pubsub.dead_letter_topic),
            telemetry=telemetry,
            store_probe=store_probe,
        )
