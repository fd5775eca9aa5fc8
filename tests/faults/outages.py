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
import time

from ecom_devtools.cassandra import CassandraNode
from ecom_devtools.emulator import PubSubEmulator
from ecom_devtools.infra import InfraConfig
from tests.infra import InfraUnderTest

READY_TIMEOUT = 240.0  # Cassandra replays its commit log on a restart; the machine is shared


class Servers:
    """The session's Cassandra node and emulator, as fault scenarios break and mend them."""

    def __init__(self, infra: InfraUnderTest) -> None:
        config = InfraConfig(
            infra.base_dir, infra.cql_port, infra.storage_port, infra.jmx_port, infra.pubsub_port
        )
        self.node = CassandraNode(config.cassandra())
        self.emulator = PubSubEmulator(config.emulator())
        self._restarted: list[CassandraNode | PubSubEmulator] = []
        self.outages: dict[str, float] = {}  # what was down, and for how many seconds in all

    # -- Cassandra ---------------------------------------------------------------------------

    def pause_cassandra(self) -> float:
        """SIGSTOP the JVM; the moment it froze (monotonic)."""
        self.node.pause()
        return time.monotonic()

    async def resume_cassandra(self, since: float) -> None:
        self.node.resume()
        await self.node.wait_ready(READY_TIMEOUT)
        self._count("cassandra paused", since)

    async def kill_cassandra(self) -> float:
        """SIGKILL the JVM, as a crash would; the moment it died (monotonic)."""
        await asyncio.to_thread(self.node.kill)
        return time.monotonic()

    async def restart_cassandra(self, since: float) -> None:
        """Start a new JVM on the same data directory and ports; wait until CQL answers."""
        await self._start(self.node)
        self._count("cassandra killed", since)

    # -- the emulator ------------------------------------------------------------------------

    async def kill_emulator(self) -> float:
        """SIGKILL the emulator: every topic, subscription and message is gone."""
        await asyncio.to_thread(self.emulator.kill)
        return time.monotonic()

    async def restart_emulator(self, since: float) -> None:
        await self._start(self.emulator)
        self._count("emulator restarted", since)

    # -- leaving things as they were ---------------------------------------------------------

    async def heal(self) -> None:
        """Resume a paused node, start whatever is not running, wait until both answer."""
        if self.node.is_running():
            self.node.resume()  # SIGCONT: harmless on a node that runs
            await self.node.wait_ready(READY_TIMEOUT)
        else:
            await self._start(self.node)
        if self.emulator.is_running():
            self.emulator.resume()
            await self.emulator.wait_ready(READY_TIMEOUT)
        else:
            await self._start(self.emulator)

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
