"""The consumers' dependency gate: stop pulling while a dependency is down, probe, resume.

The gate is also the consumers' source of truth for ``/readyz``: it marks the dependency whose
failure closed it as down in the health state, and up again once it reopens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from ecom_shared.error_text import describe_error
from ecom_shared.errors import CASSANDRA
from ecom_shared.observability.health import HealthState
from ecom_shared.observability.logs import get_logger
from ecom_shared.runtime.backoff import Backoff, wait_or_stop

Probe = Callable[[], Awaitable[None]]
"""Raises while a dependency the handler needs cannot take its requests."""

PROBE_SECONDS: Final = 10.0
"""How often the consumers and the DLQ worker check Cassandra while all is well, so that an
idle service notices an outage (and ``/readyz`` turns) before a message fails."""

log = get_logger(__name__)


class DependencyGate:
    """Open while dependencies answer. Closed by a failure; reopened once every dependency
    that failed answers its probe (for Cassandra, :class:`~ecom_shared.cassandra.store.StoreProbe`:
    a write and a read). A dependency without a probe (Pub/Sub: its pulls and publishes
    report for it) is tried again by the next request once the backoff has passed."""

    def __init__(self, probes: Mapping[str, Probe], backoff: Backoff, health: HealthState) -> None:
        self._probes = dict(probes)
        self._backoff = backoff
        self._health = health
        self._open = asyncio.Event()
        self._open.set()
        self._lock = asyncio.Lock()
        self._marked: set[str] = set()
        for dependency in self._probes:
            health.track(dependency)

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
            for dependency, probe in self._probes.items():
                try:
                    await probe()
                except Exception as exc:  # noqa: BLE001 - any probe failure means "down"
                    self.close(dependency, f"probe failed: {describe_error(exc)}")

    async def _probe_to_reopen(self) -> None:
        """Probe each dependency that failed (the caller holds the lock); reopen if all answer."""
        for dependency in sorted(self._marked):
            probe = self._probes.get(dependency)
            if probe is None:
                continue
            try:
                await probe()
            except Exception as exc:  # noqa: BLE001 - any probe failure means "still down"
                error = describe_error(exc)
                log.info("dependency.probe_failed", dependency=dependency, error=error)
                self._health.down(dependency, f"probe failed: {error}")
                return
        self._reopen()

    def _reopen(self) -> None:
        self._backoff.reset()
        self._open.set()
        for dependency in self._marked:
            self._health.up(dependency)
        log.info("dependency.available", dependencies=sorted(self._marked))
        self._marked.clear()
