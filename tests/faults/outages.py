"""Outages of the session's own servers: Cassandra paused (SIGSTOP) or killed (SIGKILL) and
restarted on its data directory and ports, the emulator killed and restarted on its port.

Every test after these shares the servers, so :meth:`Servers.heal` (called by the outage
tests' fixture whatever happened) resumes a paused node and starts whatever is not running,
and waits until both answer. A server restarted here is a child of this object, not of the
session's ``started_infra`` (which can no longer see it): :meth:`Servers.stop_restarted`,
called at the end of the session, stops it.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, replace

from ecom_devtools.local.cassandra import JVM_FLAGS, CassandraNode, ensure_cassandra
from ecom_devtools.local.emulator import PubSubEmulator
from ecom_devtools.local.infra import InfraConfig
from ecom_devtools.local.java import REQUIRED_MAJOR, find_java
from tests.faults.harness import Scenario
from tests.faults.services import Service
from tests.infra import InfraUnderTest
from tests.polling import Check, eventually

READY_TIMEOUT = 240.0  # Cassandra replays its commit log on a restart; the machine is shared


class Servers:
    """The session's Cassandra node and emulator, as fault scenarios break and mend them."""

    def __init__(self, infra: InfraUnderTest) -> None:
        config = InfraConfig(
            infra.base_dir, infra.cql_port, infra.storage_port, infra.jmx_port, infra.pubsub_port
        )
        self._cassandra_config = config.cassandra()
        self.node = CassandraNode(self._cassandra_config)  # the object that started it, if any
        self.emulator = PubSubEmulator(config.emulator())
        self._restarted: list[CassandraNode | PubSubEmulator] = []
        self._broken: set[str] = set()  # what a test paused or killed and has not mended yet
        self.outages: dict[str, float] = {}  # what was down, and for how many seconds in all

    # -- Cassandra ---------------------------------------------------------------------------

    def pause_cassandra(self) -> float:
        """SIGSTOP the JVM; the moment it froze (monotonic)."""
        self._broken.add("cassandra")
        self.node.pause()
        return time.monotonic()

    async def resume_cassandra(self, since: float) -> None:
        self.node.resume()
        await self.node.wait_ready(READY_TIMEOUT)
        self._broken.discard("cassandra")
        self._count("cassandra paused", since)

    async def make_commitlog_durable(self) -> None:
        """Restart the node with its commit log synced before each acknowledgement.

        The test node syncs it every 10 s, and Cassandra replays a segment only up to its last
        sync marker: killed, a single node would lose what it acknowledged since then, and
        nothing the pipeline does could bring it back. (A production cluster keeps copies on
        other replicas; scenario 9 kills a node in one.) The restart after the kill is in the
        node's usual mode again, so later tests write at the usual speed.
        """
        self._broken.add("cassandra")
        await asyncio.to_thread(self.node.stop)
        self.node = CassandraNode(replace(self._cassandra_config, durable_commitlog=True))
        await self._start(self.node)
        self._broken.discard("cassandra")

    async def make_schema_durable(self) -> None:
        """Flush the schema tables to disk (``nodetool flush system_schema``).

        The test node runs with ``-Dcassandra.unsafesystem=true``, which skips the flush a real
        node makes after each schema change: killed, it would come back without the keyspaces
        created since it started, and its commit log replay would then drop their rows. Call
        this after the scenario's keyspace exists and before the kill.
        """
        lib_dir = await asyncio.to_thread(ensure_cassandra, self.node.config.version)
        argv = [
            str(find_java(REQUIRED_MAJOR)),
            *JVM_FLAGS,
            "-Xmx256m",
            "-cp",
            f"{self.node.conf_dir}:{lib_dir}/*",
            "org.apache.cassandra.tools.NodeTool",
            *("-h", self.node.config.host, "-p", str(self.node.config.jmx_port)),
            *("flush", "system_schema"),
        ]
        done = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, timeout=180, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"nodetool flush failed: {done.stdout}{done.stderr}"[-2000:])

    async def kill_cassandra(self) -> float:
        """SIGKILL the JVM, as a crash would; the moment it died (monotonic)."""
        self._broken.add("cassandra")
        await asyncio.to_thread(self.node.kill)
        return time.monotonic()

    async def restart_cassandra(self, since: float) -> None:
        """Start a new JVM on the same data directory and ports; wait until CQL answers."""
        self.node = CassandraNode(self._cassandra_config)
        await self._start(self.node)
        self._broken.discard("cassandra")
        self._count("cassandra killed", since)

    # -- the emulator ------------------------------------------------------------------------

    async def kill_emulator(self) -> float:
        """SIGKILL the emulator: every topic, subscription and message is gone."""
        self._broken.add("emulator")
        await asyncio.to_thread(self.emulator.kill)
        return time.monotonic()

    async def restart_emulator(self, since: float) -> None:
        await self._start(self.emulator)
        self._broken.discard("emulator")
        self._count("emulator restarted", since)

    # -- leaving things as they were ---------------------------------------------------------

    async def heal(self) -> None:
        """Resume or start what a test left paused or dead, and wait until it answers."""
        if "cassandra" in self._broken:
            if self.node.is_running():
                self.node.resume()  # SIGCONT: harmless on a node that runs
                await self.node.wait_ready(READY_TIMEOUT)
            else:
                self.node = CassandraNode(self._cassandra_config)
                await self._start(self.node)
        if "emulator" in self._broken:
            if self.emulator.is_running():
                await self.emulator.wait_ready(READY_TIMEOUT)
            else:
                await self._start(self.emulator)
        self._broken.clear()

    def stop_restarted(self) -> None:
        """Stop the servers this object started (the session's end)."""
        for server in reversed(self._restarted):
            server.stop()
        self._restarted.clear()

    async def _start(self, server: CassandraNode | PubSubEmulator) -> None:
        await asyncio.to_thread(server.start)
        self._restarted.append(server)
        await server.wait_ready(READY_TIMEOUT)

    def _count(self, what: str, since: float) -> None:
        self.outages[what] = round(self.outages.get(what, 0.0) + time.monotonic() - since, 1)


# -- what the consumers do while Cassandra is away ---------------------------------------------

PULLERS = 2
MAX_MESSAGES = 50


def outage_env(request_timeout_seconds: float) -> dict[str, str]:
    """Few, small batches, so what a consumer may still pull once its gate has closed is small
    and known; and the services' Cassandra request timeout."""
    return {
        "ECOM_CASSANDRA__REQUEST_TIMEOUT_SECONDS": str(request_timeout_seconds),
        "ECOM_CONSUMER__PULLERS": str(PULLERS),
        "ECOM_CONSUMER__MAX_MESSAGES": str(MAX_MESSAGES),
    }


DELIVERY_ATTEMPTS = 5
"""The subscriptions' dead-letter policy, at the least Pub/Sub allows: a consumer that kept
pulling and failing through an outage (a redelivery every retry delay of 1 s, each failing
within the request timeout, or at once while connections are refused) would push healthy
messages to the dead-letter topic within seconds, and the scenario's dead-letter check would
count them as wrong."""


def outage_settings(scenario: Scenario) -> None:
    """Provision the scenario's subscriptions with :data:`DELIVERY_ATTEMPTS`, and give its own
    Cassandra reads (the verifier's scans) a patient timeout, as a node just restarted on a
    loaded machine answers slowly for a while. Call before entering the scenario."""
    settings = scenario.settings
    pubsub = settings.pubsub.model_copy(update={"max_delivery_attempts": DELIVERY_ATTEMPTS})
    cassandra = settings.cassandra.model_copy(update={"request_timeout_seconds": 60.0})
    scenario.settings = settings.model_copy(update={"pubsub": pubsub, "cassandra": cassandra})


OUTAGE_WAIT = 180.0
"""How long a scenario waits for a consequence of an outage (a gate closing or reopening, a
producer getting on): Cassandra's restart on this shared machine takes minutes at worst."""


async def until(check: Check, what: str) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after :data:`OUTAGE_WAIT`."""
    await eventually(check, OUTAGE_WAIT, what=what)


async def metric(service: Service, name: str, **labels: str) -> float:
    value = await service.metric(name, **labels)
    return -1.0 if value is None else value  # -1: serves no metrics (yet)


async def cassandra_down_for_all(consumers: list[Service]) -> bool:
    """Each consumer's gate is closed: it reports Cassandra down (and /readyz is false)."""
    for consumer in consumers:
        if await metric(consumer, "ecom_dependency_up", dependency="cassandra") != 0:
            return False
    return True


async def cassandra_up_for_all(consumers: list[Service]) -> bool:
    for consumer in consumers:
        if await metric(consumer, "ecom_dependency_up", dependency="cassandra") != 1:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Away:
    """Counters over a stretch of an outage that began once every consumer's gate was closed."""

    published: int  # by the producer meanwhile: there was plenty to pull
    pulled: dict[str, int]  # by each consumer meanwhile
    retried: dict[str, int]  # failures each consumer judged "retry later" meanwhile


async def hold_outage(consumers: list[Service], producer: Service, messages: int) -> Away:
    """Wait until every consumer saw Cassandra go; then keep it away while the producer
    publishes ``messages`` more, and count what the consumers did meanwhile."""
    await until(lambda: cassandra_down_for_all(consumers), "every consumer's gate closed")

    async def snapshot() -> tuple[float, dict[str, float], dict[str, float]]:
        pulled = {c.name: await metric(c, "ecom_messages_received_total") for c in consumers}
        retried = {c.name: await metric(c, "ecom_messages_retried_total") for c in consumers}
        return await metric(producer, "ecom_messages_published_total"), pulled, retried

    published, pulled, retried = await snapshot()

    async def published_enough() -> bool:
        return await metric(producer, "ecom_messages_published_total") >= published + messages

    await until(published_enough, f"the producer published {messages} more messages")
    published_after, pulled_after, retried_after = await snapshot()
    return Away(
        published=int(published_after - published),
        pulled={n: int(pulled_after[n] - pulled[n]) for n in pulled},
        retried={n: int(retried_after[n] - retried[n]) for n in retried},
    )
