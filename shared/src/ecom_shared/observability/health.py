"""Health state and the one small HTTP port: ``/metrics``, ``/livez`` and ``/readyz``.

The server runs on the service's own event loop (aiohttp.web), not in a thread as
prometheus-client's ``start_http_server`` would: a blocked or dead loop then fails its probes
instead of being reported healthy by a thread that still answers.

- ``/livez``: 200 while the loop answers and the service's main task runs, 503 once it ended.
- ``/readyz``: 200 once the service has started, while every dependency it watches answers;
  503 with a JSON body saying why while starting, stopping, or a dependency is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from ecom_shared.error_text import clip, redact
from ecom_shared.observability.logs import get_logger
from ecom_shared.observability.metrics import HealthMetrics, new_registry
from ecom_shared.settings import HttpSettings

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    since: datetime
    since_monotonic: float


class HealthState:
    """What the probes report. Components mark the dependencies they watch up or down; the
    HTTP handlers only read. Not thread-safe: used from the service's event loop only."""

    def __init__(
        self,
        *,
        stop: asyncio.Event | None = None,
        metrics: HealthMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stop = stop
        self._metrics = metrics
        self._clock = clock
        self._main: asyncio.Task[Any] | None = None
        self._started = False
        self._checks: dict[str, _Failure | None] = {}

    def watch(self, main: asyncio.Task[Any] | None) -> None:
        """The task whose end means the process no longer works (``/livez`` fails)."""
        self._main = main

    def started(self) -> None:
        self._started = True

    def track(self, dependency: str) -> None:
        """Report ``dependency`` (as up until told otherwise)."""
        if dependency not in self._checks:
            self._checks[dependency] = None
            self._gauge(dependency, up=True)

    def down(self, dependency: str, reason: str) -> None:
        """Mark ``dependency`` unreachable; a repeated call keeps the time it went down."""
        reason, failure = clip(redact(reason)), self._checks.get(dependency)
        if failure is None:
            log.warning("health.dependency_down", dependency=dependency, reason=reason)
            failure = _Failure(reason, datetime.now(UTC), self._clock())
            self._gauge(dependency, up=False)
        else:
            failure = _Failure(reason, failure.since, failure.since_monotonic)
        self._checks[dependency] = failure

    def up(self, dependency: str) -> None:
        failure = self._checks.get(dependency)
        if failure is not None:
            seconds = round(self._clock() - failure.since_monotonic, 3)
            log.info("health.dependency_up", dependency=dependency, after_seconds=seconds)
        elif dependency in self._checks:
            return  # already up: the common case, kept cheap
        self._checks[dependency] = None
        self._gauge(dependency, up=True)

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        if self._main is not None and self._main.done():
            return False, {"alive": False, "reason": "the service's main task has ended"}
        return True, {"alive": True}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        checks = {name: self._describe(failure) for name, failure in self._checks.items()}
        down = [f"{name}: {c['reason']}" for name, c in checks.items() if not c["ok"]]
        reason = None
        if self._stop is not None and self._stop.is_set():
            reason = "stopping"
        elif not self._started:
            reason = "starting"
        elif down:
            reason = "unreachable: " + "; ".join(down)
        body: dict[str, Any] = {"ready": reason is None, "checks": checks}
        if reason is not None:
            body["reason"] = reason
        return reason is None, body

    def _describe(self, failure: _Failure | None) -> dict[str, Any]:
        if failure is None:
            return {"ok": True}
        return {
            "ok": False,
            "reason": failure.reason,
            "since": failure.since.isoformat(),
            "for_seconds": round(self._clock() - failure.since_monotonic, 3),
        }

    def _gauge(self, dependency: str, *, up: bool) -> None:
        if self._metrics is not None:
            self._metrics.dependency_up.labels(dependency).set(1 if up else 0)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A service's metrics registry and health state, served together on one port."""

    registry: CollectorRegistry
    health: HealthState

    @staticmethod
    def create(stop: asyncio.Event | None = None) -> Telemetry:
        """For the running task: its end fails ``/livez``; ``stop`` set fails ``/readyz``."""
        registry = new_registry()
        health = HealthState(stop=stop, metrics=HealthMetrics(registry))
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to watch
            health.watch(asyncio.current_task())
        return Telemetry(registry, health)


def build_app(telemetry: Telemetry) -> web.Application:
    health, registry = telemetry.health, telemetry.registry

    async def metrics(request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(registry), headers={"Content-Type": content_type})

    async def livez(_: web.Request) -> web.Response:
        return _json(*health.liveness())

    async def readyz(_: web.Request) -> web.Response:
        return _json(*health.readiness())

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    return app


def _json(ok: bool, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=200 if ok else 503)


@contextlib.asynccontextmanager
async def serve_http(settings: HttpSettings, telemetry: Telemetry) -> AsyncIterator[int | None]:
    """Serve the three endpoints on ``settings.host:settings.port`` until exit; yield the port
    (the one picked when ``port`` is 0), or None when serving is disabled."""
    if not settings.enabled:
        yield None
        return
    runner = web.AppRunner(build_app(telemetry), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            raise HttpPortUnavailable(
                f"cannot serve metrics and health on {settings.host}:{settings.port} "
                f"({exc.strerror}): give each service on this host its own ECOM_HTTP__PORT, "
                "0 for any free port, or ECOM_HTTP__ENABLED=false"
            ) from None
        port = _bound_port(runner)
        log.info("http.serving", host=settings.host, port=port, paths=_PATHS)
        yield port
    finally:
        await runner.cleanup()


_PATHS = ["/metrics", "/livez", "/readyz"]


class HttpPortUnavailable(OSError):
    """The health and metrics port cannot be bound: a setting to change, not a crash to debug."""


def _bound_port(runner: web.AppRunner) -> int:
    address = runner.addresses[0]
    return int(address[1])
