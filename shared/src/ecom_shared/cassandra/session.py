"""Cassandra session lifecycle and statement binding, over acsylla.

Every statement the pipeline runs is prepared once, bound with values (never CQL text built
from message content), marked idempotent so the driver may retry it, and run at the
configured consistency (``LOCAL_QUORUM`` by default; acsylla's own default is ``LOCAL_ONE``).
The store runs them through :func:`execute`, the one place where the driver's errors that mean
"Cassandra cannot take this request now" become the pipeline's own ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import acsylla

from ecom_shared.cassandra.driver_options import cluster_options
from ecom_shared.error_text import describe_error
from ecom_shared.errors import CassandraConfigError, StoreUnavailable
from ecom_shared.observability.logs import get_logger
from ecom_shared.runtime.backoff import Backoff
from ecom_shared.settings import CassandraSettings

log = get_logger(__name__)

Session = Any  # acsylla.Session: acsylla ships no type information
Prepared = Any  # acsylla.PreparedStatement
Statement = Any  # acsylla.Statement


def create_cluster(settings: CassandraSettings) -> Any:
    """A configured acsylla cluster; credentials and TLS only when set.

    The settings have already parsed the TLS material; should the driver still refuse it
    (a PEM file changed since), that is a CassandraConfigError, not something to retry.
    """
    try:
        return acsylla.create_cluster(list(settings.contact_points), **cluster_options(settings))
    except acsylla.errors.CassErrorSourceSsl as exc:
        raise CassandraConfigError(
            f"the driver cannot load the TLS material ({type(exc).__name__}): check "
            "ssl_trusted_cert, ssl_cert, ssl_private_key and ssl_private_key_password"
        ) from None


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
        user=settings.username,
        tls=settings.ssl_verify if settings.ssl_enabled else False,
    )
    try:
        yield session
    finally:
        await session.close()
        # Only destroy() releases the socket pair the cluster registered with the event loop.
        cluster.destroy()


# Refusals that no retry can cure: the settings are wrong.
_REFUSED = (acsylla.errors.CassErrorServerBadCredentials, acsylla.errors.CassErrorSourceSsl)


async def _connect(settings: CassandraSettings, keyspace: str | None) -> tuple[Any, Session]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.startup_timeout_seconds
    backoff = Backoff(0.5, 5.0)
    while True:
        cluster = create_cluster(settings)
        try:
            return cluster, await cluster.create_session(keyspace=keyspace)
        except _REFUSED as exc:
            cluster.destroy()
            raise _refusal(settings, exc) from exc
        except acsylla.errors.CassException as exc:
            cluster.destroy()
            if loop.time() >= deadline:
                raise
            log.warning("cassandra.connect_failed", error=describe_error(exc), retry=True)
            await asyncio.sleep(backoff.next_delay())


def _refusal(settings: CassandraSettings, exc: Exception) -> CassandraConfigError:
    """A clear error for a refused connection; it names the user, never the password."""
    if isinstance(exc, acsylla.errors.CassErrorServerBadCredentials):
        who = f"user {settings.username!r}" if settings.username else "no credentials"
        return CassandraConfigError(
            f"Cassandra refused the login ({who}): check cassandra username and password"
        )
    return CassandraConfigError(
        f"TLS with Cassandra failed ({describe_error(exc, limit=200)}): check "
        f"ssl_trusted_cert, ssl_verify ({settings.ssl_verify}), ssl_cert and ssl_private_key"
    )


# The one list of the driver's errors that mean "Cassandra cannot take this request now",
# whatever the message: no connection or TLS session, a timeout, too few replicas, a node
# overloaded or starting, a read or write that failed on the replicas, an error inside the
# server, a refused login or permission. The rest (a statement or value the server or the
# driver refuses) is a bug or a schema the code does not match, left as the driver raised it.
UNAVAILABLE: Final = (
    acsylla.errors.CassExceptionConnectionError,
    acsylla.errors.CassErrorLibNoHostsAvailable,
    acsylla.errors.CassErrorLibUnableToConnect,
    acsylla.errors.CassErrorLibHostResolution,
    acsylla.errors.CassErrorLibUnableToSetKeyspace,
    acsylla.errors.CassErrorLibWriteError,
    acsylla.errors.CassErrorLibNoStreams,
    acsylla.errors.CassErrorLibRequestQueueFull,
    acsylla.errors.CassErrorLibRequestTimedOut,
    acsylla.errors.CassErrorServerUnavailable,
    acsylla.errors.CassErrorServerOverloaded,
    acsylla.errors.CassErrorServerIsBootstrapping,
    acsylla.errors.CassErrorServerWriteTimeout,
    acsylla.errors.CassErrorServerReadTimeout,
    acsylla.errors.CassErrorServerWriteFailure,
    acsylla.errors.CassErrorServerReadFailure,
    acsylla.errors.CassErrorServerServerError,
    acsylla.errors.CassErrorServerUnauthorized,
    acsylla.errors.CassErrorServerBadCredentials,
    acsylla.errors.CassErrorSourceSsl,  # every TLS error is one of its subclasses
)


async def execute(session: Session, statement: Statement) -> Any:
    """Run one statement. Every request of the store goes through here, so that the error
    policy judges the pipeline's own errors: an error of :data:`UNAVAILABLE` comes out as
    :class:`~ecom_shared.errors.StoreUnavailable` (the driver's error as its cause)."""
    try:
        return await session.execute(statement)
    except UNAVAILABLE as exc:
        name = type(exc).__name__
        raise StoreUnavailable(describe_error(exc), driver_error=name) from exc


def bind(prepared: Prepared, values: Sequence[Any], *, timestamp: int | None = None) -> Statement:
    """Bind values to a prepared statement; optionally set its write timestamp (microseconds)."""
    statement = prepared.bind(list(values))
    statement.set_is_idempotent(True)
    if timestamp is not None:
        statement.set_timestamp(timestamp)
    return statement


MIN_TOKEN = -(2**63)
MAX_TOKEN = 2**63 - 1


SPLIT_PARTS = 16
"""A token range whose query Cassandra aborts for the tombstones it met is read again as this
many smaller ranges (and so on, down to a single token)."""


def split_range(bounds: tuple[int, int], parts: int) -> list[tuple[int, int]]:
    """Split an inclusive token range into ``parts`` contiguous, inclusive ranges (fewer when
    the range holds fewer tokens)."""
    low, high = bounds
    parts = max(1, min(parts, high - low + 1))
    span = (high - low + 1) // parts
    starts = [low + i * span for i in range(parts)]
    ends = [start - 1 for start in starts[1:]] + [high]
    return list(zip(starts, ends, strict=True))


def token_ranges(segments: int) -> list[tuple[int, int]]:
    """Split the Murmur3 token ring into ``segments`` contiguous, inclusive ranges."""
    return split_range((MIN_TOKEN, MAX_TOKEN), segments)


def too_many_tombstones(exc: BaseException) -> bool:
    """Cassandra aborted a read that scanned more tombstones than ``tombstone_failure_threshold``
    (100,000 by default); the reason travels in the read failure's message (``exc`` is the
    driver's error or the StoreUnavailable that :func:`execute` made of it)."""
    failure = exc.__cause__ if isinstance(exc, StoreUnavailable) else exc
    return isinstance(failure, acsylla.errors.CassErrorServerReadFailure) and (
        "TOMBSTONE" in str(failure).upper()
    )


class _DenseRange(Exception):
    """Inside :func:`scan_by_token` only: this range must be read in smaller parts."""

    def __init__(self, bounds: tuple[int, int], cause: BaseException, *, resumed: bool) -> None:
        super().__init__(bounds)
        self.bounds, self.cause, self.resumed = bounds, cause, resumed


_Page = tuple[tuple[int, int], Any]  # a page's token range, and the page


@dataclass(frozen=True, slots=True)
class _Pager:
    """Fetches one page of one token range, retrying transient failures."""

    session: Session
    prepared: Prepared
    page_size: int
    attempts: int
    prefetch: bool

    async def fetch(self, bounds: tuple[int, int], page_state: bytes | None) -> _Page:
        try:
            return await self._with_retries(bounds, page_state)
        except StoreUnavailable as exc:
            if too_many_tombstones(exc) and bounds[0] < bounds[1]:
                raise _DenseRange(bounds, exc, resumed=page_state is not None) from exc
            raise

    async def _with_retries(self, bounds: tuple[int, int], page_state: bytes | None) -> _Page:
        backoff = Backoff(0.5, 5.0)
        for attempt in range(1, self.attempts):
            try:
                return await self._once(bounds, page_state)
            except StoreUnavailable as exc:
                if too_many_tombstones(exc):  # as many again next time: the caller splits
                    raise
                log.warning("cassandra.page_retried", error=exc.driver_error, attempt=attempt)
                await asyncio.sleep(backoff.next_delay())
        return await self._once(bounds, page_state)  # the last attempt: errors go up

    async def _once(self, bounds: tuple[int, int], page_state: bytes | None) -> _Page:
        statement = bind(self.prepared, list(bounds))
        statement.set_page_size(self.page_size)
        if page_state is not None:
            statement.set_page_state(page_state)
        return bounds, await execute(self.session, statement)

    def start(
        self, bounds: tuple[int, int] | None, page_state: bytes | None
    ) -> Awaitable[_Page] | None:
        """The page, as a running task when prefetching, else a coroutine to await."""
        if bounds is None:
            return None
        page = self.fetch(bounds, page_state)
        return asyncio.ensure_future(page) if self.prefetch else page


async def scan_by_token(
    session: Session,
    prepared: Prepared,
    *,
    page_size: int,
    segments: int,
    prefetch: bool = False,
    attempts: int = 1,
) -> AsyncGenerator[Any, None]:
    """Rows of a statement ``... WHERE token(pk) >= ? AND token(pk) <= ?``, range by range,
    one page at a time, so a scan of any size holds one page in memory (two with
    ``prefetch``: the next page is then requested before this one's rows are handed out, so
    Cassandra reads while the caller works). A page that fails because Cassandra cannot take
    the request now (:class:`~ecom_shared.errors.StoreUnavailable`: a timeout, an unavailable
    node...) is asked for again, up to ``attempts`` times in all; then that error is raised.

    A range that Cassandra refuses to read for its tombstones (many deletes not yet purged by
    compaction) is read again as :data:`SPLIT_PARTS` smaller ranges, each of which meets only
    its share of them, so no number of deletes can stop a scan. Should that happen after the
    range's first page, the rows of its earlier pages are handed out a second time: callers
    must treat a row twice as they would once (the DLQ worker's joins are idempotent)."""
    pager = _Pager(session, prepared, page_size, attempts, prefetch)
    async with contextlib.aclosing(_pages(pager, token_ranges(segments))) as pages:
        async for page in pages:
            for row in page:
                yield row


async def scan_pages(
    session: Session,
    prepared: Prepared,
    *,
    page_size: int,
    segments: int,
    parallel: int,
    attempts: int = 1,
) -> AsyncGenerator[Any, None]:
    """The pages of the same scan as :func:`scan_by_token` (the same retries and splitting of
    dense ranges, so the same rule: a row may come twice), read by ``parallel`` readers at once,
    each over its share of the token ranges and each prefetching its next page. Pages come in
    the order they arrive; at most ``parallel`` wait to be taken, so memory stays bounded by
    about ``2 * parallel`` pages however large the table. Bulk readers (the report) take pages
    rather than rows so that they can convert a page's rows at once."""
    ranges = token_ranges(segments)
    parallel = max(1, min(parallel, len(ranges)))
    pager = _Pager(session, prepared, page_size, attempts, prefetch=True)
    queue: asyncio.Queue[Any] = asyncio.Queue(parallel)
    done = object()

    async def read(share: list[tuple[int, int]]) -> None:
        async with contextlib.aclosing(_pages(pager, share)) as pages:
            async for page in pages:
                await queue.put(page)
        await queue.put(done)

    readers = [asyncio.ensure_future(read(ranges[i::parallel])) for i in range(parallel)]
    try:
        running = parallel
        while running:
            taken = asyncio.ensure_future(queue.get())
            await asyncio.wait([taken, *readers], return_when=asyncio.FIRST_COMPLETED)
            for reader in readers:
                if reader.done() and (error := reader.exception()) is not None:
                    taken.cancel()
                    raise error
            page = await taken
            if page is done:
                running -= 1
            else:
                yield page
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


async def _pages(pager: _Pager, ranges: Sequence[tuple[int, int]]) -> AsyncGenerator[Any, None]:
    """The pages of ``ranges``, in order; a dense range is read again in smaller parts."""
    if not ranges:
        return
    todo = deque(ranges)
    pending = pager.start(todo.popleft(), None)
    try:
        while pending is not None:
            try:
                bounds, result = await pending
            except _DenseRange as dense:
                todo.extendleft(reversed(_split_dense(dense)))
                pending = pager.start(todo.popleft(), None)
                continue
            if result.has_more_pages():
                pending = pager.start(bounds, result.page_state())
            else:
                pending = pager.start(todo.popleft() if todo else None, None)
            yield result
    finally:
        if isinstance(pending, asyncio.Future):
            pending.cancel()
        elif pending is not None:
            pending.close()  # type: ignore[attr-defined]  # a coroutine never awaited


def _split_dense(dense: _DenseRange) -> list[tuple[int, int]]:
    parts = split_range(dense.bounds, SPLIT_PARTS)
    log.warning(
        "cassandra.range_split",
        reason="too_many_tombstones",
        low=dense.bounds[0],
        high=dense.bounds[1],
        parts=len(parts),
        rows_again=dense.resumed,
        error=describe_error(dense.cause),
    )
    return parts
