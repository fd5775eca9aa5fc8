"""Developer tools for the e-commerce pipeline: real Cassandra and Pub/Sub emulator processes,
installed and supervised locally without Docker."""

from __future__ import annotations

from ecom_devtools.cassandra import CassandraConfig, CassandraNode, ensure_cassandra
from ecom_devtools.cassandra_security import ClientEncryption
from ecom_devtools.emulator import EmulatorConfig, PubSubEmulator
from ecom_devtools.errors import CqlError, InfraError
from ecom_devtools.infra import InfraConfig, started_infra

__all__ = [
    "CassandraConfig",
    "CassandraNode",
    "ClientEncryption",
    "CqlError",
    "EmulatorConfig",
    "InfraConfig",
    "InfraError",
    "PubSubEmulator",
    "ensure_cassandra",
    "started_infra",
]
