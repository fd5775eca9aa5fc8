"""Cassandra session lifecycle and statement binding, over acsylla.

Every statement the pipeline runs is prepared once, bound with values (never CQL text built
from message content), marked idempotent so the driver may retry it, and run at the
configured consistency (``LOCAL_QUORUM`` by default; acsylla's own default is ``LOCAL_ONE``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import acsylla

from ecom_shared.backoff import Backoff
from ecom_shared.logs import get_logger
from ecom_shared.settings import CassandraSettings

log = get_logger(__name__)

Session = Any  # acsylla.Session: acsylla ships no type information
Prepared = Any  # acsylla.PreparedStatement
Statement = Any  # acsylla.Statement


def create_cluster(settings: CassandraSettings) -> Any:
    """A configured acsylla cluster; credentials and TLS only when set."""
    options: dict[str, Any] = {
        "port": settings.port,
        "consistency": acsylla.Consistency[settings.consistency],
        "request_timeout": settings.request_timeout_seconds,
        "connect_timeout": settings.connect_timeout_seconds,
        "num_threads_io": settings.io_threads,
        "log_level": "error",
        "exponential_reconnect_base_delay_ms": 500,
        "exponential_reconnect_max_delay_ms": 10_000,
    }
    if settings.local_dc:
        options["load_balance_dc_aware"] = settings.local_dc
    if settings.username is not None and settings.password is not None:
        options["username"] = settings.username
        options["password"] = settings.password.get_secret_value()
    if settings.ssl_enabled:
        options["ssl_enabled"] = True
        if settings.ssl_trusted_cert:
            options["ssl_trusted_cert"] = _pem(settings.ssl_trusted_cert)
    return acsylla.create_cluster(list(settings.contact_points), **options)


def _pem(value: str) -> str:
    if value.lstrip().startswith("-----BEGIN"):
        return value
    with open(value, encoding="ascii") as handle:
        return handle.read()


@contextlib.asynccontextmanager
async def cassandra_session(
    settings: CassandraSettings, *, keyspace: str | None = None
) -> AsyncIterator[Session]:
    """Connect, retrying for ``startup_timeout_seconds``, and close the session on exit."""
    cluster, session = await _connect(settings, keyspace)
    log.info(
        "cassandra.connected",
        contact_points=settings.contact_points,
        port=settings.port,
        keyspace=keyspace,
        consistency=settings.consistency,
    )
    try:
        yield session
    finally:
        await session.close()
        # Only destroy() releases the socket pair the cluster registered with the event loop.
        cluster.destroy()


async def _connect(settings: CassandraSettings, keyspace: str | None) -> tuple[Any, Session]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.startup_timeout_seconds
    backoff = Backoff(0.5, 5.0)
    while True:
        cluster = create_cluster(settings)
        try:
            return cluster, await cluster.create_session(keyspace=keyspace)
        except acsylla.errors.CassException as exc:
            cluster.destroy()
            if loop.time() >= deadline:
                raise
            log.warning("cassandra.connect_failed", error=str(exc)[:300], retry=True)
            await asyncio.sleep(backoff.next_delay())


def bind(prepared: Prepared, values: Sequence[Any], *, timestamp: int | None = None) -> Statement:
    """Bind values to a prepared statement; optionally set its write timestamp (microseconds)."""
    statement = prepared.bind(list(values))
    statement.set_is_idempotent(True)
    if timestamp is not None:
        statement.set_timestamp(timestamp)
    return statement


MIN_TOKEN = -(2**63)
MAX_TOKEN = 2**63 - 1


def token_ranges(segments: int) -> list[tuple[int, int]]:
    """Split the Murmur3 token ring into ``segments`` contiguous, inclusive ranges."""
    span = (MAX_TOKEN - MIN_TOKEN) // segments
    bounds = [MIN_TOKEN + i * span for i in range(segments)] + [MAX_TOKEN]
    return [(bounds[i] if i == 0 else bounds[i] + 1, bounds[i + 1]) for i in range(segments)]


async def scan_by_token(
    session: Session, prepared: Prepared, *, page_size: int, segments: int
) -> AsyncIterator[Any]:
    """Rows of a statement ``... WHERE token(pk) >= ? AND token(pk) <= ?``, range by range,
    one page at a time, so a scan of any size holds one page in memory."""
    for low, high in token_ranges(segments):
        page_state: bytes | None = None
        while True:
            statement = bind(prepared, [low, high])
            statement.set_page_size(page_size)
            if page_state is not None:
                statement.set_page_state(page_state)
            result = await session.execute(statement)
            for row in result:
                yield row
            if not result.has_more_pages():
                break
            page_state = result.page_state()


async def ping(session: Session) -> None:
    """Raise unless a Cassandra node answers a trivial query."""
    await session.execute(acsylla.create_statement("SELECT release_version FROM system.local"))
