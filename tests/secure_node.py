"""A Cassandra 5.0 node with password authentication, authorisation and mutual TLS.

It runs beside the suite's usual node, on ports of its own (:mod:`tests.ports`), with a 512 MB
heap, PasswordAuthenticator, CassandraAuthorizer and client TLS that requires a client
certificate; the certificates are made at run time. Test modules start one each, in a
module-scoped fixture (modules run one after the other, so the ports are free again).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import acsylla

from ecom_devtools.local.cassandra import CassandraConfig, CassandraNode
from ecom_devtools.local.cassandra_security import DEFAULT_SUPERUSER, ClientEncryption
from ecom_shared.cassandra.session import cassandra_session
from ecom_shared.settings import CassandraSettings
from tests import ports
from tests.tls import TlsFiles, make_tls_files

CQL_PORT, STORAGE_PORT, JMX_PORT = ports.SECURE_CQL, ports.SECURE_STORAGE, ports.SECURE_JMX
APP_USER = "pipeline"
APP_PASSWORD = f"app-pw-{secrets.token_hex(12)}"
KEY_PASSWORD = f"key-pw-{secrets.token_hex(12)}"


@dataclass(frozen=True)
class SecureNode:
    tls: TlsFiles

    def settings(self, **changes: Any) -> CassandraSettings:
        """The application's settings: its own role, TLS with the CA and a client certificate."""
        values: dict[str, Any] = {
            "contact_points": ["127.0.0.1"],
            "port": CQL_PORT,
            "username": APP_USER,
            "password": APP_PASSWORD,
            "ssl_enabled": True,
            "ssl_trusted_cert": str(self.tls.ca_cert),
            "ssl_cert": str(self.tls.client_cert),
            "ssl_private_key": str(self.tls.client_key),
            "ssl_private_key_password": KEY_PASSWORD,
            "startup_timeout_seconds": 0,
            "connect_timeout_seconds": 10,
            "request_timeout_seconds": 20,
        }
        values.update(changes)
        return CassandraSettings(**{k: v for k, v in values.items() if v is not None})

    def superuser(self, **changes: Any) -> CassandraSettings:
        return self.settings(username=DEFAULT_SUPERUSER, password=DEFAULT_SUPERUSER, **changes)


@contextlib.asynccontextmanager
async def secure_node(base: Path) -> AsyncIterator[SecureNode]:
    """Start the node under ``base`` with the application's role; stop it on exit."""
    tls = make_tls_files(base / "tls", KEY_PASSWORD)
    encryption = ClientEncryption(tls.node_keystore, tls.ca_cert, require_client_auth=True)
    config = CassandraConfig(
        base / "node",
        cql_port=CQL_PORT,
        storage_port=STORAGE_PORT,
        jmx_port=JMX_PORT,
        heap="512M",
        password_auth=True,
        client_encryption=encryption,
    )
    cassandra = CassandraNode(config)
    cassandra.start()
    try:
        secure = SecureNode(tls)
        await cassandra.wait_ready(timeout=180, client=secure.superuser())
        await _create_app_role(secure.superuser())
        yield secure
    finally:
        cassandra.stop()


async def _create_app_role(superuser: CassandraSettings) -> None:
    """A login role for the application, allowed to create and use keyspaces, not a superuser."""
    async with cassandra_session(superuser) as session:
        for cql in (
            f"CREATE ROLE {APP_USER} WITH PASSWORD = '{APP_PASSWORD}' AND LOGIN = true",
            f"GRANT ALL PERMISSIONS ON ALL KEYSPACES TO {APP_USER}",
        ):
            await session.execute(acsylla.create_statement(cql))
