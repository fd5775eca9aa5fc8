"""The browser helper (``tests/browser.py``) on tiny pages served on loopback: it must see a
chart drawn, and it must also see a script that throws and a request that leaves the page's
origin. Chromium is required, never skipped: ``scripts/bootstrap`` installs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from tests.browser import Browser, BrowserError, png_size
from tests.chromium import BINARY_ENV

pytestmark = pytest.mark.browser

# A data: icon keeps Chromium from asking the server for /favicon.ico (a 404 is a console error).
HEAD = '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head>'
PAGES = {
    "/chart": HEAD
    + """<body><h1>Orders per minute</h1>
<svg width="320" height="120" role="img"><title>orders</title>
  <rect class="bar" x="10" y="60" width="40" height="60" fill="#369"/>
  <rect class="bar" x="60" y="20" width="40" height="100" fill="#369"/>
  <rect class="bar" x="110" y="90" width="40" height="30" fill="#369"/>
</svg></body></html>""",
    "/throws": HEAD
    + """<body><svg id="chart"></svg><script>
  console.error("no series for chart");
  throw new Error("chart failed to draw");
</script></body></html>""",
    "/elsewhere": HEAD + '<body><img src="http://127.0.0.2:9/x.png" alt="far"></body></html>',
    "/stuck": HEAD + '<body><img src="/held.png" alt="held"></body></html>',
}


@dataclass(frozen=True)
class Site:
    """The tests' pages on 127.0.0.1 (a free port); ``/held.png`` waits for ``release``."""

    port: int
    release: asyncio.Event

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[Site]:
    release = asyncio.Event()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGES[request.path], content_type="text/html")

    async def held(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=404)

    app = web.Application()
    for path in PAGES:
        app.router.add_get(path, page)
    app.router.add_get("/held.png", held)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield Site(runner.addresses[0][1], release)
    release.set()
    await runner.cleanup()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with Browser(width=1280) as started:
        yield started


async def test_a_drawn_chart_is_seen_whole_and_clean(browser: Browser, site: Site) -> None:
    look = await browser.open(site.url("/chart"))

    width, height = png_size(look.screenshot_png)
    assert width == 1280
    assert height >= 120
    assert look.console_errors == ()
    assert look.requests[0] == site.url("/chart")
    assert look.requests_elsewhere() == ()
    assert await browser.evaluate("document.querySelectorAll('svg rect').length") == 3
    heights = await browser.evaluate(
        "[...document.querySelectorAll('rect.bar')].map(r => r.getBBox().height)"
    )
    assert heights == [60, 100, 30]


async def test_a_throwing_script_and_a_console_error_are_reported(
    browser: Browser, site: Site
) -> None:
    look = await browser.open(site.url("/throws"))

    assert len(look.console_errors) == 2, look.console_errors
    console, exception = look.console_errors
    assert console.startswith("console.error: no series for chart")
    assert exception.startswith("exception: Uncaught Error: chart failed to draw")
    assert site.url("/throws") in exception


async def test_a_request_to_another_host_is_listed(browser: Browser, site: Site) -> None:
    look = await browser.open(site.url("/elsewhere"))

    assert look.requests_elsewhere() == ("http://127.0.0.2:9/x.png",)
    assert any("127.0.0.2:9/x.png" in error for error in look.console_errors)


async def test_an_expression_that_throws_is_an_error(browser: Browser, site: Site) -> None:
    await browser.open(site.url("/chart"))

    with pytest.raises(BrowserError, match="no_such_chart is not defined"):
        await browser.evaluate("no_such_chart.marks")


async def test_a_page_that_cannot_be_reached_is_an_error(browser: Browser) -> None:
    with pytest.raises(BrowserError, match="could not be opened: net::ERR_"):
        await browser.open("http://127.0.0.2:9/")


async def test_a_page_that_does_not_finish_loading_is_an_error(
    browser: Browser, site: Site
) -> None:
    with pytest.raises(BrowserError, match=r"not loaded and captured within 0\.5 s"):
        await browser.open(site.url("/stuck"), timeout=0.5)
    site.release.set()


async def test_missing_chromium_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BINARY_ENV, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(BrowserError, match="install Debian's package 'chromium'"):
        async with Browser():
            pass


async def test_a_configured_binary_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BINARY_ENV, "/nonexistent/chromium")

    with pytest.raises(BrowserError, match=f"{BINARY_ENV}=/nonexistent/chromium"):
        async with Browser():
            pass
