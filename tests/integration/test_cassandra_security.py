"""The security settings on a real Cassandra 5.0: password authentication and mutual TLS.

The module starts its own node beside the suite's usual one (:mod:`tests.secure_node`). Every
connection goes through the project's own code (settings, ``cassandra_session``,
``apply_schema``, ``CassandraOrders``).
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import acsylla
import pytest
import structlog

from ecom_shared.cassandra.schema import apply_schema
from ecom_shared.cassandra.session import cassandra_session
from ecom_shared.cassandra.store import CassandraOrders
from ecom_shared.errors import CassandraConfigError
from ecom_shared.events import Order, parse_event
from ecom_shared.observability.logs import configure_logging, get_logger
from ecom_shared.settings import LogSettings
from tests.infra import node_answers
from tests.secure_node import APP_PASSWORD, APP_USER, KEY_PASSWORD, SecureNode, secure_node
from tests.tls import NODE_HOST_NAME
from tests.unit.shared.test_events import ORDER, body

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecureNode]:
    async with secure_node(tmp_path_factory.mktemp("secure-cassandra")) as started:
        yield started


async def test_password_and_mutual_tls_carry_schema_and_store(node: SecureNode) -> None:
    settings = node.settings(keyspace="secure_store")
    order = parse_event(Order, body(ORDER, order_id=4242, item="padlock"), None)
    async with cassandra_session(settings) as session:
        await apply_schema(session, settings)
        orders = await CassandraOrders.prepare(session, settings)
        assert not await orders.order_exists(4242)
        await orders.upsert_order(order, 1_000_000, datetime.now(UTC))
        assert await orders.order_exists(4242)
        assert (APP_USER, True) in await _clients(node)  # the node sees the app's role, over TLS


async def _clients(node: SecureNode) -> set[tuple[str, bool]]:
    """(user, TLS or not) of every client connected to the node, as a superuser sees them."""
    async with cassandra_session(node.superuser()) as session:
        rows = await session.execute(
            acsylla.create_statement("SELECT username, ssl_enabled FROM system_views.clients")
        )
        return {(row.column_value("username"), row.column_value("ssl_enabled")) for row in rows}


async def test_wrong_password_fails_at_once_without_showing_it(node: SecureNode) -> None:
    wrong = f"wrong-pw-{secrets.token_hex(8)}"
    started = time.monotonic()
    refusal = re.escape(f"refused the login (user '{APP_USER}')")
    with pytest.raises(CassandraConfigError, match=refusal) as raised:
        async with cassandra_session(node.settings(password=wrong, startup_timeout_seconds=60)):
            pytest.fail("connected with a wrong password")
    assert time.monotonic() - started < 30  # not retried for the start-up minute
    rendered = "".join(traceback.format_exception(raised.value))
    assert "incorrect" in rendered  # Cassandra's own reason is kept as the cause
    assert wrong not in rendered
    assert APP_PASSWORD not in rendered


async def test_plain_connection_to_the_tls_port_fails(node: SecureNode) -> None:
    plain = node.settings(
        ssl_enabled=False, ssl_trusted_cert=None, ssl_cert=None, ssl_private_key=None,
        ssl_private_key_password=None,
    )  # fmt: skip
    with pytest.raises(acsylla.errors.CassErrorLibNoHostsAvailable):
        async with cassandra_session(plain):
            pytest.fail("connected without TLS")


async def test_client_certificate_is_required(node: SecureNode) -> None:
    without = node.settings(ssl_cert=None, ssl_private_key=None, ssl_private_key_password=None)
    with pytest.raises(acsylla.errors.CassErrorLibNoHostsAvailable):
        async with cassandra_session(without):
            pytest.fail("connected without a client certificate")
    async with cassandra_session(node.settings()) as session:
        await node_answers(session)


@pytest.mark.parametrize(
    ("verify", "trust_other_ca"),
    [
        ("peer_cert", True),  # a node certificate from a CA we do not trust
        ("peer_identity_dns", True),  # acsylla's own PEER_IDENTITY_DNS flag would accept this
        ("peer_identity", False),  # the certificate names localhost, not 127.0.0.1
    ],
)
async def test_verification_refuses_the_wrong_node_certificate(
    node: SecureNode, verify: str, trust_other_ca: bool
) -> None:
    """acsylla 1.2.0's own flags would let the last two through (see VerifyFlags)."""
    ca = node.tls.other_ca_cert if trust_other_ca else node.tls.ca_cert
    settings = node.settings(ssl_verify=verify, ssl_trusted_cert=str(ca))
    with pytest.raises(CassandraConfigError, match="TLS with Cassandra failed"):
        async with cassandra_session(settings):
            pytest.fail(f"ssl_verify={verify} accepted a certificate it must refuse")


async def test_host_name_verification_accepts_the_right_certificate(node: SecureNode) -> None:
    if socket.getnameinfo(("127.0.0.1", 0), 0)[0] != NODE_HOST_NAME:
        pytest.skip(f"127.0.0.1 does not resolve back to {NODE_HOST_NAME} on this machine")
    async with cassandra_session(node.settings(ssl_verify="peer_identity_dns")) as session:
        await node_answers(session)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put back the logging setup a test changes with ``configure_logging``."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    yield
    root.handlers[:], root.level = handlers, level
    structlog.configure(**config)


@pytest.mark.usefixtures("restore_logging")
async def test_passwords_never_reach_the_logs(
    node: SecureNode, capfd: pytest.CaptureFixture[str]
) -> None:
    # The services' own setup, writing to the stdout that capfd captures (DEBUG: everything).
    configure_logging(LogSettings(level="DEBUG", json_output=True), service="security-test")
    wrong = f"wrong-pw-{secrets.token_hex(8)}"
    refused_settings = node.settings(password=wrong)
    with pytest.raises(CassandraConfigError) as refused:
        async with cassandra_session(refused_settings):
            pytest.fail("connected with a wrong password")
    get_logger("security-test").error("service.crashed", exc_info=refused.value)  # as services do
    no_certificate = node.settings(
        ssl_cert=None, ssl_private_key=None, ssl_private_key_password=None,
        startup_timeout_seconds=1,
    )  # fmt: skip
    with pytest.raises(acsylla.errors.CassErrorLibNoHostsAvailable):
        async with cassandra_session(no_certificate):  # retried (logged), then given up
            pytest.fail("connected without a client certificate")
    settings = node.settings()
    async with cassandra_session(settings) as session:
        await node_answers(session)
    captured = capfd.readouterr()
    logged = captured.out + captured.err
    for event in ('"cassandra.connected"', '"cassandra.connect_failed"', '"service.crashed"'):
        assert event in logged  # what was captured is the services' JSON log
    for secret in (APP_PASSWORD, wrong, KEY_PASSWORD):
        assert secret not in logged
        for shown in (settings, refused_settings):
            assert secret not in repr(shown)
            assert secret not in str(shown)
