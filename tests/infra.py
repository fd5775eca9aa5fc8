"""The real infrastructure for integration and end-to-end tests, and per-test isolation.

One Cassandra node and one emulator serve the whole session, on their own ports (so a
developer's running stack is left alone); each test gets its own topics, subscriptions and
keyspace, so tests never see each other's data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import acsylla

from ecom_devtools.local.cassandra import CassandraNode
from ecom_devtools.local.infra import InfraConfig
from ecom_shared.cassandra.session import Session
from ecom_shared.settings import CassandraSettings, PubSubSettings, ServiceSettings
from tests import ports


@dataclass(frozen=True)
class InfraUnderTest:
    base_dir: Path
    cql_port: int
    pubsub_host_port: str
    storage_port: int
    jmx_port: int

    @staticmethod
    def from_env(base_dir: Path) -> InfraUnderTest:
        return InfraUnderTest(
            base_dir=base_dir,
            cql_port=ports.CQL,
            pubsub_host_port=f"127.0.0.1:{ports.PUBSUB}",
            storage_port=ports.STORAGE,
            jmx_port=ports.JMX,
        )

    @property
    def pubsub_port(self) -> int:
        return int(self.pubsub_host_port.rsplit(":", 1)[1])

    def cassandra_node(self) -> CassandraNode:
        """The session's Cassandra node (found by its pid file), e.g. to pause it."""
        config = InfraConfig(
            self.base_dir, self.cql_port, self.storage_port, self.jmx_port, self.pubsub_port
        )
        return CassandraNode(config.cassandra())

    def settings(self, tag: str | None = None) -> ServiceSettings:
        """Settings with names no other test uses."""
        tag = tag or uuid.uuid4().hex[:10]
        pubsub = PubSubSettings.suffixed(tag, project_id="test-project", ack_deadline_seconds=10)
        cql = CassandraSettings(
            contact_points=["127.0.0.1"], port=self.cql_port, keyspace=f"t_{tag}"
        )
        return ServiceSettings(pubsub=pubsub, cassandra=cql)

    def environment(self, settings: ServiceSettings) -> dict[str, str]:
        """The environment a service process needs to use ``settings``."""
        p, c = settings.pubsub, settings.cassandra
        env = {
            "PUBSUB_EMULATOR_HOST": self.pubsub_host_port,
            "ECOM_PUBSUB__PROJECT_ID": p.project_id,
            # The subscriptions were made with this deadline: leases are renewed at its half.
            "ECOM_PUBSUB__ACK_DEADLINE_SECONDS": str(p.ack_deadline_seconds),
            "ECOM_CASSANDRA__CONTACT_POINTS": '["127.0.0.1"]',
            "ECOM_CASSANDRA__PORT": str(self.cql_port),
            "ECOM_CASSANDRA__KEYSPACE": c.keyspace,
            # Several services share this host: each picks a free port and logs it.
            "ECOM_HTTP__PORT": "0",
            "ECOM_HTTP__HOST": "127.0.0.1",
        }
        for name in PubSubSettings.model_fields:
            if name.endswith(("_topic", "_subscription")):
                env[f"ECOM_PUBSUB__{name.upper()}"] = getattr(p, name)
        return env


async def node_answers(session: Session) -> None:
    """Raise unless a Cassandra node answers a query of ``system.local``: any one live node
    does, whatever the replicas of the pipeline's tables (its probe writes to them instead)."""
    await session.execute(acsylla.create_statement("SELECT release_version FROM system.local"))
