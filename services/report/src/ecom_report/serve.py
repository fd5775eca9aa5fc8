"""``ecom-report serve``: the report as a live page.

``/`` is the page and ``/report.json`` its figures; both are computed again when a request
comes and the last figures are older than ``refresh`` seconds, so the tables are read at most
once per ``refresh`` however many people look (requests that arrive during a computation wait
for it and share it). ``/livez`` answers while the server runs; ``/readyz`` once figures have
been computed and the last attempt succeeded: while that is not so, a probe starts the next
attempt itself (at most once per refresh), so a start during a Cassandra outage heals without a
reader. A failed computation keeps the last figures on the page, under a banner that says so,
and is logged.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from html import escape

from aiohttp import web

from ecom_report.build import Built
from ecom_shared.error_text import describe_error
from ecom_shared.observability.logs import get_logger

log = get_logger(__name__)

Builder = Callable[[], Awaitable[Built]]


class LiveReport:
    """The last figures and when they were made; :meth:`current` refreshes them when due."""

    def __init__(self, build: Builder, refresh_seconds: float) -> None:
        self._build = build
        self.refresh_seconds = refresh_seconds
        self.latest: Built | None = None
        self.error: str | None = None
        self._made_at = float("-inf")
        self._running: asyncio.Task[None] | None = None

    async def current(self) -> Built | None:
        if time.monotonic() - self._made_at >= self.refresh_seconds:
            if self._running is None or self._running.done():
                self._running = asyncio.ensure_future(self._refresh())
            await asyncio.shield(self._running)
        return self.latest

    async def _refresh(self) -> None:
        try:
            self.latest = await self._build()
            self.error = None
        except Exception as exc:  # noqa: BLE001 - any failure is shown and logged; the server stays up
            self.error = describe_error(exc)
            log.error("report.refresh_failed", error=self.error)  # noqa: TRY400 - no traceback
        self._made_at = time.monotonic()


def application(report: LiveReport) -> web.Application:
    async def page(_: web.Request) -> web.Response:
        built = await report.current()
        if built is None:
            return web.Response(
                status=503, text=_unavailable(report.error), content_type="text/html"
            )
        html = built.page(refresh_seconds=report.refresh_seconds)
        if report.error is not None:
            banner = (
                f'<p style="background:#fde2e1;padding:8px 28px;margin:0">The figures could '
                f"not be refreshed ({escape(report.error)}); these are from {built.figures.as_of}."
                "</p>"
            )
            html = html.replace("<main>", banner + "<main>", 1)
        return web.Response(text=html, content_type="text/html")

    async def data(_: web.Request) -> web.Response:
        built = await report.current()
        if built is None:
            return web.json_response({"error": report.error}, status=503)
        return web.Response(
            text=json.dumps(built.as_json(), indent=2), content_type="application/json"
        )

    async def livez(_: web.Request) -> web.Response:
        return web.Response(text="live\n")

    async def readyz(_: web.Request) -> web.Response:
        if report.latest is None or report.error is not None:
            await report.current()  # try again (at most once per refresh): a probe heals it
        if report.latest is not None and report.error is None:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"not ready: {report.error or 'starting'}\n")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/report.json", data)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    return app


def _unavailable(error: str | None) -> str:
    why = escape(error or "the first figures are being computed")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="5"><title>Store report</title></head>'
        f"<body><h1>Store report</h1><p>Not available yet: {why}.</p></body></html>"
    )


async def serve(report: LiveReport, host: str, port: int, stop: asyncio.Event) -> int:
    """Serve until ``stop``. The port opens at once (``/readyz`` answers 503 until the first
    figures are computed, which starts right away)."""
    runner = web.AppRunner(application(report), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("report.serving", host=host, port=bound, refresh_seconds=report.refresh_seconds)
    try:
        await report.current()
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0
