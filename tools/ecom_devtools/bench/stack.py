"""Each scenario's own topics, subscriptions and tables, and the services run against them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from gcloud.aio.pubsub import PublisherClient, SubscriberClient

from ecom_devtools.local.services import ServiceProcess
from ecom_shared.pubsub.client import http_session
from ecom_shared.pubsub.provision import provision
from ecom_shared.settings import CassandraSettings, PubSubSettings, ServiceSettings

KEYSPACE = "ecom_bench"
PROJECT = "bench-project"
SERVICE_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class Infra:
    """Where the benchmark's own Cassandra and emulator answer, and where logs go."""

    cql_port: int
    pubsub_host_port: str
    logs: Path
    cassandra_log: Path

    def base_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host_port,
            "ECOM_PUBSUB__PROJECT_ID": PROJECT,
            "ECOM_CASSANDRA__CONTACT_POINTS": '["127.0.0.1"]',
            "ECOM_CASSANDRA__PORT": str(self.cql_port),
        }


@dataclass(frozen=True)
class Stage:
    """One scenario's names: topics and subscriptions ``*-<tag>``, tables ``*_<tag>``."""

    infra: Infra
    tag: str
    settings: ServiceSettings

    @staticmethod
    def create(infra: Infra, tag: str) -> Stage:
        pubsub = PubSubSettings.suffixed(tag, project_id=PROJECT)
        table_tag = tag.replace("-", "_")
        cassandra = CassandraSettings(
            port=infra.cql_port,
            keyspace=KEYSPACE,
            orders_table=f"op_{table_tag}",
            dlq_table=f"dlq_{table_tag}",
        )
        return Stage(infra, tag, ServiceSettings(pubsub=pubsub, cassandra=cassandra))

    @property
    def orders_table(self) -> str:
        return f"{KEYSPACE}.{self.settings.cassandra.orders_table}"

    @property
    def dlq_table(self) -> str:
        return f"{KEYSPACE}.{self.settings.cassandra.dlq_table}"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a service process working on this stage."""
        p = self.settings.pubsub
        env = self.infra.base_env()
        env["ECOM_HTTP__PORT"] = "0"  # several services at once: each takes a free port
        env["ECOM_CASSANDRA__KEYSPACE"] = KEYSPACE
        env["ECOM_CASSANDRA__ORDERS_TABLE"] = self.settings.cassandra.orders_table
        env["ECOM_CASSANDRA__DLQ_TABLE"] = self.settings.cassandra.dlq_table
        for name in PubSubSettings.model_fields:
            if name.endswith(("_topic", "_subscription")):
                env[f"ECOM_PUBSUB__{name.upper()}"] = getattr(p, name)
        return {**env, **(extra or {})}

    def service(self, name: str, args: list[str] | None = None, index: int = 0) -> ServiceProcess:
        log = self.infra.logs / f"{self.tag}-{name}-{index}.log"
        return ServiceProcess(name, list(args or []), log)


@contextlib.asynccontextmanager
async def staged(infra: Infra, tag: str, *, taps: bool = False) -> AsyncIterator[Stage]:
    """A stage with its topics, subscriptions (plus taps) and tables, all removed on exit.

    The emulator keeps every message of a subscription in memory, acked or not, until the
    subscription goes: without this a full run exhausts its direct memory (seen at about
    500k messages with ``-Xmx512m``) and it starts failing requests.
    """
    stage = Stage.create(infra, tag)
    os.environ["PUBSUB_EMULATOR_HOST"] = infra.pubsub_host_port
    await provision(stage.settings)
    if taps:
        await create_taps(stage)
    try:
        yield stage
    finally:
        await _release(stage)


async def _release(stage: Stage) -> None:
    p = stage.settings.pubsub
    subscriptions = [
        getattr(p, n) for n in PubSubSettings.model_fields if n.endswith("_subscription")
    ]
    topics = [getattr(p, n) for n in PubSubSettings.model_fields if n.endswith("_topic")]
    async with http_session() as session:
        subscriber, publisher = SubscriberClient(session=session), PublisherClient(session=session)
        for name in [*subscriptions, *tap_names(stage).values()]:
            with contextlib.suppress(aiohttp.ClientResponseError):
                await subscriber.delete_subscription(
                    SubscriberClient.subscription_path(PROJECT, name)
                )
        for name in topics:
            with contextlib.suppress(aiohttp.ClientResponseError):
                await publisher.delete_topic(PublisherClient.topic_path(PROJECT, name))


def tap_names(stage: Stage) -> dict[str, str]:
    """Topic -> tap subscription: a copy of every message, read after the run for publishTime."""
    p = stage.settings.pubsub
    return {p.orders_topic: f"tap-orders-{stage.tag}", p.payments_topic: f"tap-pay-{stage.tag}"}


async def create_taps(stage: Stage) -> None:
    async with http_session() as session:
        client = SubscriberClient(session=session)
        for topic, name in tap_names(stage).items():
            await client.create_subscription(
                SubscriberClient.subscription_path(PROJECT, name),
                PublisherClient.topic_path(PROJECT, topic),
                {"ackDeadlineSeconds": 600, "messageRetentionDuration": "3600s"},
            )


@dataclass
class ModuleProcess(ServiceProcess):
    """A helper process that is not one of the services: ``python -m <module> [args]``."""

    module: str = ""

    @property
    def module_name(self) -> str:
        return self.module


@dataclass
class Running:
    """Service processes started for one measurement; stopped together."""

    env: dict[str, str] = field(default_factory=dict)
    processes: list[ServiceProcess] = field(default_factory=list)
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    def start(self, service: ServiceProcess) -> None:
        """Start one more process on the same stage; it is stopped with the others."""
        service.start(self.env)
        self.processes.append(service)

    def pids(self) -> dict[str, int]:
        return {f"{p.name}-{i}": p.pid for i, p in enumerate(self.processes) if p.pid is not None}

    def by_name(self, name: str) -> Iterator[ServiceProcess]:
        return (p for p in self.processes if p.name == name)


async def until_started(processes: list[ServiceProcess], timeout: float = 30.0) -> None:
    """Wait until each consumer has finished starting (its ``consumer.started`` line).

    Used before a producer starts (so a measurement does not include the consumers' start-up)
    and before the consumers are stopped: a process stopped while still importing dies of the
    SIGTERM instead of draining, and with a tiny backlog a second consumer can still be
    starting when the first has drained it all.
    """
    deadline = time.monotonic() + timeout
    for process in processes:
        if not process.name.endswith("consumer"):
            continue
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError):
                if '"consumer.started"' in process.log_path.read_text(errors="replace"):
                    break
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running(
    stage: Stage, services: list[ServiceProcess], extra_env: dict[str, str] | None = None
) -> AsyncIterator[Running]:
    """Start ``services`` on ``stage``; SIGTERM them on exit and keep their exit codes."""
    handle = Running(env=stage.env(extra_env))
    try:
        for service in services:
            handle.start(service)
        yield handle
    finally:
        await until_started(handle.processes)
        # One SIGTERM to all, then wait for each: they drain side by side.
        for service in handle.processes:
            service.signal(signal.SIGTERM)
        for i, service in enumerate(handle.processes):
            handle.exit_codes[f"{service.name}-{i}"] = _reap(service)


def _reap(service: ServiceProcess) -> int | None:
    if service.process is None:
        return None
    try:
        return service.process.wait(SERVICE_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        service.process.kill()
        return service.process.wait(10)
