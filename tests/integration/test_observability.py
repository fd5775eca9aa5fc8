"""Metrics and health of the real services, run as processes on the real Cassandra and emulator.

Each service picks a free port (``ECOM_HTTP__PORT=0``) and logs it; the tests scrape it over
HTTP as Prometheus and a container probe would. The outage test pauses the session's Cassandra
node with SIGSTOP and always resumes it, then waits until it answers again, so the tests after
it find it as they expect.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ecom_devtools.local.services import ServiceProcess
from ecom_shared.settings import ServiceSettings
from tests.infra import InfraUnderTest
from tests.polling import eventually

Spawn = Callable[..., ServiceProcess]
QUICK = {
    "ECOM_CONSUMER__PULLERS": "2",
    "ECOM_CONSUMER__RETRY_DELAY_SECONDS": "1",
    "ECOM_WORKER__INTERVAL_SECONDS": "1",
    "ECOM_CASSANDRA__REQUEST_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
async def spawn(
    infra: InfraUnderTest, settings: ServiceSettings, tmp_path: Path
) -> AsyncIterator[Spawn]:
    """Start services as processes on this test's topics and keyspace; stop them at the end."""
    started: list[ServiceProcess] = []
    base = {**os.environ, **infra.environment(settings), **QUICK}

    def start(name: str, *args: str, **env: str) -> ServiceProcess:
        service = ServiceProcess(name, list(args), tmp_path / f"{name}.log", env)
        service.start(base)
        started.append(service)
        return service

    try:
        yield start
    finally:
        for service in started:
            service.stop(30)


class Scraper:
    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self._session = session
        self._base = f"http://127.0.0.1:{port}"

    async def get(self, path: str) -> tuple[int, str]:
        async with self._session.get(self._base + path) as reply:
            return reply.status, await reply.text()

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, text = await self.get("/metrics")
        assert status == 200
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    async def value(self, name: str, **labels: str) -> float:
        return (await self.metrics()).get((name, frozenset(labels.items())), 0.0)

    async def total(self, name: str) -> float:
        """The sum of ``name`` over all its label values."""
        return sum(v for (n, _), v in (await self.metrics()).items() if n == name)

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        async with self._session.get(self._base + "/readyz") as reply:
            return reply.status, await reply.json()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield session


async def scraper(http: aiohttp.ClientSession, service: ServiceProcess) -> Scraper:
    return Scraper(http, await service.wait_served_port(timeout=120))


async def test_counters_move_as_the_services_handle_a_real_stream(
    spawn: Spawn, http: aiohttp.ClientSession, settings: ServiceSettings
) -> None:
    orders = await scraper(http, spawn("order-consumer"))
    payments = await scraper(http, spawn("payment-consumer"))
    producer = await scraper(
        http,
        spawn(
            "producer",
            *("--orders", "0", "--rate", "200", "--orphan-payments", "0.2", "--malformed", "0.1"),
        ),
    )
    p = settings.pubsub
    order_sub, payment_sub = p.orders_subscription, p.payments_subscription

    async def moved() -> bool:
        return (
            await producer.value("ecom_messages_published_total", kind="orders") > 0
            and await orders.value("ecom_messages_acked_total", subscription=order_sub) > 0
            and await payments.value("ecom_messages_acked_total", subscription=payment_sub) > 0
            and await payments.value("ecom_payments_parked_total") > 0
            and await orders.value(
                "ecom_cassandra_request_duration_seconds_count", operation="upsert_order"
            )
            > 0
            # malformed messages are counted (by reason); the first may come a little later
            and await orders.total("ecom_messages_dead_lettered_total")
            + await payments.total("ecom_messages_dead_lettered_total")
            > 0
        )

    await eventually(moved, timeout=180)
    for service in (orders, payments, producer):
        assert (await service.get("/livez"))[0] == 200
        assert (await service.readiness())[0] == 200


async def test_readiness_turns_false_while_cassandra_is_paused_and_true_after(
    spawn: Spawn, http: aiohttp.ClientSession, infra: InfraUnderTest
) -> None:
    consumer_process = spawn("order-consumer")
    worker_process = spawn("dlq-worker")
    consumer = await scraper(http, consumer_process)
    worker = await scraper(http, worker_process)
    services = (consumer, worker)

    async def all_status(status: int) -> bool:
        return all([(await s.readiness())[0] == status for s in services])

    await eventually(lambda: all_status(200), timeout=120)
    node = infra.cassandra_node()
    node.pause()
    try:
        await eventually(lambda: all_status(503), timeout=120)
        for service in services:
            _, body = await service.readiness()
            assert body["checks"]["cassandra"]["ok"] is False, body
            assert body["reason"].startswith("unreachable: cassandra"), body
            assert (await service.get("/livez"))[0] == 200  # alive, only not ready
        gauge = await consumer.value("ecom_dependency_up", dependency="cassandra")
        assert gauge == 0
    finally:
        node.resume()
        await node.wait_ready(180)
    await eventually(lambda: all_status(200), timeout=180)
    assert await consumer.value("ecom_dependency_up", dependency="cassandra") == 1
    consumer_process.signal(signal.SIGTERM)
    assert consumer_process.wait(60) == 0
