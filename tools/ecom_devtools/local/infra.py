"""Cassandra and the Pub/Sub emulator together: one directory, one saved set of ports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ecom_devtools.errors import InfraError
from ecom_devtools.local.cassandra import CassandraConfig, CassandraNode
from ecom_devtools.local.emulator import EmulatorConfig, PubSubEmulator

STATE_FILE = "infra.json"


@dataclass(frozen=True)
class InfraConfig:
    """Ports and place of a local stack: Cassandra in ``base_dir/cassandra``, the emulator in
    ``base_dir/pubsub``."""

    base_dir: Path
    cql_port: int = 9042
    storage_port: int = 7000
    jmx_port: int = 7199
    pubsub_port: int = 8085
    host: str = "127.0.0.1"

    def cassandra(self) -> CassandraConfig:
        """Return the configuration of this stack's Cassandra node."""
        return CassandraConfig(
            base_dir=self.base_dir / "cassandra",
            cql_port=self.cql_port,
            storage_port=self.storage_port,
            jmx_port=self.jmx_port,
            host=self.host,
        )

    def emulator(self) -> EmulatorConfig:
        """Return the configuration of this stack's Pub/Sub emulator."""
        return EmulatorConfig(
            base_dir=self.base_dir / "pubsub", host=self.host, port=self.pubsub_port
        )


def save_config(config: InfraConfig) -> None:
    """Record the stack's ports in ``base_dir/infra.json`` for later commands."""
    config.base_dir.mkdir(parents=True, exist_ok=True)
    data = {key: value for key, value in asdict(config).items() if key != "base_dir"}
    (config.base_dir / STATE_FILE).write_text(json.dumps(data, indent=2) + "\n")


def load_config(base_dir: Path) -> InfraConfig | None:
    """Return the configuration saved in ``base_dir``, or None if there is none."""
    try:
        data = json.loads((base_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    known = {field.name for field in fields(InfraConfig)} - {"base_dir"}
    if not isinstance(data, dict):
        raise InfraError(f"{base_dir / STATE_FILE} is not a JSON object")
    return InfraConfig(base_dir=base_dir, **{key: data[key] for key in known if key in data})


async def wait_all_ready(
    node: CassandraNode,
    emulator: PubSubEmulator,
    timeout: float = 180.0,
) -> tuple[float, float]:
    """Wait for both servers concurrently; return the seconds each took to answer."""
    return await asyncio.gather(node.wait_ready(timeout), emulator.wait_ready(timeout))


@asynccontextmanager
async def started_infra(
    base_dir: Path,
    cql_port: int,
    storage_port: int,
    jmx_port: int,
    pubsub_port: int,
    *,
    emulator_heap: str | None = None,
) -> AsyncIterator[tuple[CassandraNode, PubSubEmulator]]:
    """Start Cassandra and the emulator under ``base_dir``, wait until both answer, yield
    ``(node, emulator)``, and stop whichever of them this call started on exit.
    ``emulator_heap`` (e.g. ``"1g"``) replaces the emulator's default ``-Xmx``."""
    config = InfraConfig(base_dir, cql_port, storage_port, jmx_port, pubsub_port)
    node = CassandraNode(config.cassandra())
    emulator_config = config.emulator()
    if emulator_heap is not None:
        emulator_config = replace(emulator_config, heap=emulator_heap)
    emulator = PubSubEmulator(emulator_config)
    started: list[CassandraNode | PubSubEmulator] = []
    try:
        for server in (node, emulator):
            await asyncio.to_thread(server.start)
            started.append(server)
        await wait_all_ready(node, emulator)
        yield node, emulator
    finally:
        await asyncio.gather(*(asyncio.to_thread(server.stop) for server in started))
