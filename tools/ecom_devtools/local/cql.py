"""A small typed facade over acsylla for one-off CQL statements (readiness checks, the CLI)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import acsylla
import acsylla.errors

from ecom_devtools.errors import CqlError
from ecom_shared.cassandra.session import create_cluster
from ecom_shared.settings import CassandraSettings

Row = dict[str, object]

_PAGE_SIZE = 1000
_DECODE_ERRORS = (ValueError, ArithmeticError)  # UnicodeDecodeError, decimal.InvalidOperation


@asynccontextmanager
async def _session(
    host: str, port: int, request_timeout: float, keyspace: str | None
) -> AsyncIterator[Any]:
    """Yield a connected acsylla session; close it and free the cluster's resources after.

    ``Cluster.destroy()`` matters: every acsylla cluster registers a socket pair with the
    event loop, and only ``destroy`` releases it (else each call leaks two descriptors).
    """
    cluster = acsylla.create_cluster(
        [host],
        port=port,
        connect_timeout=request_timeout,
        request_timeout=request_timeout,
        log_level="disabled",  # failures are raised as exceptions instead
    )
    try:
        try:
            session = await cluster.create_session(keyspace=keyspace)
        except acsylla.errors.CassException as exc:
            raise CqlError(f"cannot connect to Cassandra at {host}:{port}: {exc}") from exc
        try:
            yield session
        finally:
            await session.close()
    finally:
        cluster.destroy()


async def iter_rows(
    host: str,
    port: int,
    statement: str,
    *,
    request_timeout: float = 10.0,
    keyspace: str | None = None,
) -> AsyncIterator[Row]:
    """Run one CQL statement and yield its rows as dicts, fetching every page.

    Raises CqlError if Cassandra cannot be reached or rejects the statement.
    """
    async with _session(host, port, request_timeout, keyspace) as session:
        page_state: bytes | None = None
        while True:
            result = await _execute_page(session, statement, page_state)
            for row in result:
                yield _row_as_dict(row, result)
            if not result.has_more_pages():
                break
            page_state = result.page_state()


def _row_as_dict(row: Any, result: Any) -> Row:
    """Return a row as a dict, replacing any value that acsylla fails to decode.

    acsylla 1.2.0 cannot decode ``decimal`` values: it reads their varint bytes as UTF-8.
    """
    try:
        return dict(row.as_dict())
    except _DECODE_ERRORS:
        return {name: _column_value(row, name) for name in result.columns_names()}


def _column_value(row: Any, name: str) -> object:
    try:
        return row.column_value(name)
    except _DECODE_ERRORS:
        return f"<acsylla cannot decode this value; SELECT CAST({name} AS text)>"


async def _execute_page(session: Any, statement: str, page_state: bytes | None) -> Any:
    """Execute one page of ``statement``, translating driver errors into CqlError."""
    prepared = acsylla.create_statement(statement, page_size=_PAGE_SIZE, page_state=page_state)
    try:
        return await session.execute(prepared)
    except acsylla.errors.CassException as exc:
        raise CqlError(f"{type(exc).__name__}: {exc}") from exc


async def query(
    host: str,
    port: int,
    statement: str,
    *,
    request_timeout: float = 10.0,
    keyspace: str | None = None,
) -> list[Row]:
    """Run one CQL statement and return all of its rows as dicts."""
    return [
        row
        async for row in iter_rows(
            host, port, statement, request_timeout=request_timeout, keyspace=keyspace
        )
    ]


async def release_version(host: str, port: int, *, request_timeout: float = 2.0) -> str:
    """Return Cassandra's release version; the query that proves a node serves CQL."""
    statement = "SELECT release_version FROM system.local"
    deadline = request_timeout * 3  # the driver's timeouts fire first; this guards against a hang
    try:
        rows = await asyncio.wait_for(
            query(host, port, statement, request_timeout=request_timeout), deadline
        )
    except TimeoutError as exc:
        raise CqlError(f"no answer from {host}:{port} within {deadline:.0f} s") from exc
    if not rows:
        raise CqlError("system.local returned no row")
    return str(rows[0]["release_version"])


async def release_version_with(settings: CassandraSettings, *, request_timeout: float = 2.0) -> str:
    """Return the release version, connecting as the services do (credentials, TLS)."""
    probe = settings.model_copy(
        update={
            "request_timeout_seconds": request_timeout,
            "connect_timeout_seconds": request_timeout,
        }
    )
    cluster = create_cluster(probe)
    try:
        session = await asyncio.wait_for(cluster.create_session(), request_timeout * 3)
        try:
            result = await session.execute(
                acsylla.create_statement("SELECT release_version FROM system.local")
            )
        finally:
            await session.close()
    except (acsylla.errors.CassException, TimeoutError) as exc:
        raise CqlError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        cluster.destroy()
    row = result.first()
    if row is None:
        raise CqlError("system.local returned no row")
    return str(row.column_value("release_version"))
