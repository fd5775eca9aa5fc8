"""Settling what one pull loop pulled: its leases while it is held, then its ack or retry delay.

Every message the loop pulls is *held* until its outcome has been sent, and the lease of every
held message is renewed every half ack deadline, whether its handler still runs or has finished.
A handler's outcome is *queued* (ack it, or redeliver it after the retry delay) and the queue is
sent by one background task, one request at a time, when the loop has finished a batch, when the
queue's oldest entry has waited :data:`ACK_FLUSH_SECONDS` (a quarter of the ack deadline when
that is shorter), or when the queue fills a request. A batch that is done within that time is
acked in one request, so the fast path costs what it always did; in a slow batch (a slow
Cassandra, a low in-flight limit) what finished is acked as it goes instead of waiting for the
slowest message, and nothing finished outlives its lease meanwhile.

Only a handler that returned queues an ack, so "ack only after the write is durable" holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Final

import aiohttp

from ecom_shared.error_text import describe_error
from ecom_shared.observability.logs import get_logger
from ecom_shared.pubsub.client import MAX_ACK_IDS_PER_REQUEST, Subscription
from ecom_shared.runtime.faults import NO_CRASH, CrashHook, CrashPoint

ACK_FLUSH_SECONDS: Final = 2.0
"""Longest a finished message waits for its ack while its batch still runs. A fast batch is
done sooner, so it is still acked in one request at its end."""
SEND_ATTEMPTS: Final = 3
_NETWORK_ERRORS: Final = (aiohttp.ClientError, OSError, TimeoutError)

log = get_logger(__name__)


class Settler:
    """The leases, acks and retry delays of one pull loop. :meth:`run` is its background task,
    ended by :meth:`close` (after sending everything queued) or by cancellation."""

    def __init__(
        self,
        subscription: Subscription,
        *,
        ack_deadline: int,
        retry_delay: int,
        on_acked: Callable[[int], None],
        crash: CrashHook = NO_CRASH,
    ) -> None:
        self._subscription = subscription
        self._deadline = ack_deadline
        self._retry_delay = retry_delay
        self._on_acked = on_acked
        self._crash = crash
        self._flush_after = min(ACK_FLUSH_SECONDS, ack_deadline / 4)
        self._held: set[str] = set()
        self._acks: list[str] = []
        self._retries: list[str] = []
        self._oldest: float | None = None  # when the oldest queued outcome was queued
        self._flush_now = False
        self._closing = False
        self._wake = asyncio.Event()

    def hold(self, ack_ids: Iterable[str]) -> None:
        """Keep renewing these messages' leases until their outcome is sent."""
        self._held.update(ack_ids)

    def finished(self, ack_id: str, *, ok: bool) -> None:
        """Queue a handled message: acked if ``ok``, else redelivered after the retry delay.
        Called once per message, so it only appends (the sender wakes at most per request)."""
        (self._acks if ok else self._retries).append(ack_id)
        if self._oldest is None:
            self._oldest = asyncio.get_running_loop().time()
            self._wake.set()  # starts the flush clock
        elif len(self._acks) + len(self._retries) >= MAX_ACK_IDS_PER_REQUEST:
            self._wake.set()

    def flush(self) -> None:
        """Send what is queued now (the loop finished a batch)."""
        self._flush_now = True
        self._wake.set()

    def close(self) -> None:
        """Send what is queued, then let :meth:`run` return."""
        self._closing = True
        self._wake.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            keeper = group.create_task(self._keep_leases())
            await self._send_queued()
            keeper.cancel()

    async def _send_queued(self) -> None:
        while True:
            await self._until_due()
            self._flush_now = False
            if not (self._acks or self._retries):
                if self._closing:
                    return
                continue
            acks, retries = self._acks, self._retries
            self._acks, self._retries, self._oldest = [], [], None
            # A retry is about to get a short deadline: no lease renewal may undo it.
            self._held.difference_update(retries)
            await self._send(acks, retries)
            self._held.difference_update(acks)

    async def _until_due(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._due(loop.time()):
            self._wake.clear()
            wait = None if self._oldest is None else self._oldest + self._flush_after - loop.time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _due(self, now: float) -> bool:
        if self._closing or self._flush_now:
            return True
        if self._oldest is None:
            return False
        full = len(self._acks) + len(self._retries) >= MAX_ACK_IDS_PER_REQUEST
        return full or now >= self._oldest + self._flush_after

    async def _send(self, acks: list[str], retries: list[str]) -> None:
        """Ack ``acks`` and delay ``retries``. A lost ack only means a redelivery, which the
        idempotent writes absorb, so sending is tried a few times, then given up with a warning
        (the messages' leases then run out and Pub/Sub delivers them again)."""
        if acks:
            self._crash.reached(CrashPoint.AFTER_WRITE_BEFORE_ACK)
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                if acks:
                    await self._subscription.ack(acks)
                    self._on_acked(len(acks))
                    acks = []
                if retries:
                    await self._subscription.extend(retries, self._retry_delay)
                    retries = []
            except _NETWORK_ERRORS as exc:
                log.warning(
                    "ack.failed",
                    attempt=attempt,
                    error=describe_error(exc),
                    acks=len(acks),
                    retries=len(retries),
                )
                await asyncio.sleep(0.2 * attempt)
            else:
                return

    async def _keep_leases(self) -> None:
        """Every half ack deadline, renew the lease of every held message for a whole one."""
        while True:
            await asyncio.sleep(self._deadline / 2)
            if self._held:
                try:
                    await self._subscription.extend(list(self._held), self._deadline)
                except _NETWORK_ERRORS as exc:
                    log.warning("lease.extend_failed", error=describe_error(exc))
