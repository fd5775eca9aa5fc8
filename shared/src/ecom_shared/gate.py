"""The consumers' dependency gate: stop pulling while a dependency is down, probe, resume.

The gate is also the consumers' source of truth for ``/readyz``: it marks the dependency whose
failure closed it as down in the health state, and up again once it reopens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ecom_shared.backoff import Backoff, wait_or_stop
from ecom_shared.error_text import describe_error
from ecom_shared.errors import CASSANDRA
from ecom_shared.health import HealthState
from ecom_shared.logs import get_logger

Probe = Callable[[], Awaitable[None]]
"""Raises while a dependency the handler needs cannot be reached."""

log = get_logger(__name__)


class DependencyGate:
    """Open while dependencies answer. Closed by a failure; reopened by a successful probe."""

    def __init__(self, probe: Probe, backoff: Backoff, health: HealthState) -> None:
        self._probe = probe
        self._backoff = backoff
        self._health = health
        self._open = asyncio.Event()
        self._open.set()
        self._lock = asyncio.Lock()
        self._marked: set[str] = set()
        health.track(CASSANDRA)

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def close(self, dependency: str = CASSANDRA, reason: str = "") -> None:
        if self._open.is_set():
            log.warning("dependency.unavailable", dependency=dependency, reason=reason)
        self._open.clear()
        self._marked.add(dependency)
        self._health.down(dependency, reason or "a request failed")

    async def wait_open(self, stop: asyncio.Event) -> bool:
        """Return True once open; False if ``stop`` was set first. One caller probes at a time."""
        while not self._open.is_set():
            async with self._lock:
                if self._open.is_set():
                    break
                if await self._backoff.sleep(stop):
                    return False
                await self._probe_to_reopen()
        return not stop.is_set()

    async def watch(self, stop: asyncio.Event, interval: float) -> None:
        """Probe every ``interval``: while open, so that an idle consumer notices an outage too
        (and stops pulling messages it could not store); while closed, so that the gate reopens
        even when every puller is still waiting on a long-poll pull."""
        while not await wait_or_stop(stop, interval):
            if not self._open.is_set():
                async with self._lock:
                    if not self._open.is_set():
                        await self._probe_to_reopen()
                continue
            try:
                await self._probe()
            except Exception as exc:  # noqa: BLE001 - any probe failure means "down"
                self.close(CASSANDRA, f"probe failed: {describe_error(exc)}")

    async def _probe_to_reopen(self) -> None:
        """Probe once (the caller holds the lock); reopen if Cassandra answers."""
        try:
            await self._probe()
        except Exception as exc:  # noqa: BLE001 - any probe failure means "still down"
            error = describe_error(exc)
            log.info("dependency.probe_failed", error=error)
            self._marked.add(CASSANDRA)
            self._health.down(CASSANDRA, f"probe failed: {error}")
        else:
            self._reopen()

    def _reopen(self) -> None:
        self._backoff.reset()
        self._open.set()
        for dependency in self._marked:
            self._health.up(dependency)
        self._marked.clear()
        log.info("dependency.available")
