"""Look at a web page as a person would, in headless Chromium (Debian's ``chromium``).

    async with Browser() as browser:
        look = await browser.open(url)          # loaded, screenshot taken, errors and requests
        marks = await browser.evaluate("document.querySelectorAll('svg rect').length")

:meth:`Browser.open` waits for the page's load event, then returns a :class:`PageLook`: a
full-page PNG at the browser's width, every console error, uncaught exception and browser log
error, and the URL of every request the page made. :meth:`Browser.evaluate` runs an expression
in the page last opened and returns its value as JSON. Chromium and its temporary profile are
gone when the ``async with`` ends. Each open starts a fresh tab; events are those of that load.

Chromium asks the page's server for ``/favicon.ico`` unless the page names an icon, and a 404
there is a console error: serve one, or name none with ``<link rel="icon" href="data:,">``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self
from urllib.parse import urlsplit

from tests.cdp import CdpConnection, CdpError, Json, Message
from tests.chromium import BrowserError, chromium_binary, running_chromium

__all__ = ["Browser", "BrowserError", "Json", "PageLook", "png_size"]

WIDTH: Final = 1280
HEIGHT: Final = 800
START_TIMEOUT: Final = 30.0
OPEN_TIMEOUT: Final = 30.0
EVALUATE_TIMEOUT: Final = 10.0
CLOSE_TIMEOUT: Final = 5.0
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# Schemes whose "requests" never leave the page: no host is asked for anything.
LOCAL_SCHEMES: Final = frozenset({"data", "blob", "about"})
DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}
ERROR_CONSOLE_TYPES: Final = frozenset({"error", "assert"})


@dataclass(frozen=True)
class PageLook:
    """What a person would have seen of one page load."""

    url: str
    screenshot_png: bytes
    console_errors: tuple[str, ...]
    requests: tuple[str, ...]

    def requests_elsewhere(self) -> tuple[str, ...]:
        """The requests to an origin (scheme, host, port) other than the page's own."""
        own = _origin(self.url)
        return tuple(
            url
            for url in self.requests
            if urlsplit(url).scheme not in LOCAL_SCHEMES and _origin(url) != own
        )


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG image; ``ValueError`` when ``png`` is not one."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError(f"not a PNG image (starts {png[:16]!r})")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


class Browser:
    """Headless Chromium, one tab at a time; an async context manager."""

    def __init__(
        self,
        *,
        width: int = WIDTH,
        height: int = HEIGHT,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self._width = width
        self._height = height
        self._start_timeout = start_timeout
        self._stack = contextlib.AsyncExitStack()
        self._cdp: CdpConnection | None = None
        self._tab: _Tab | None = None
        self.version = ""

    async def __aenter__(self) -> Self:
        binary = chromium_binary()
        async with contextlib.AsyncExitStack() as stack:
            profile = stack.enter_context(tempfile.TemporaryDirectory(prefix="ecom-chromium-"))
            ws_url = await stack.enter_async_context(
                running_chromium(binary, Path(profile), self._start_timeout)
            )
            self._cdp = await stack.enter_async_context(CdpConnection(ws_url))
            self.version = (await self._cdp.call("Browser.getVersion"))["product"]
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop Chromium and remove its profile; idempotent."""
        if self._cdp is not None:
            with contextlib.suppress(CdpError):
                await self._cdp.call("Browser.close", timeout=CLOSE_TIMEOUT)
        self._tab = None
        self._cdp = None
        await self._stack.aclose()

    async def open(self, url: str, *, timeout: float = OPEN_TIMEOUT) -> PageLook:
        """Load ``url`` in a fresh tab, wait for its load event and look at it."""
        cdp = self._connected()
        if self._tab is not None:
            await self._tab.close()
            self._tab = None
        try:
            async with asyncio.timeout(timeout):
                self._tab = await _Tab.opened(cdp, self._width, self._height)
                await self._tab.navigate(url)
                png = await self._tab.screenshot()
        except TimeoutError:
            raise BrowserError(f"{url} was not loaded and captured within {timeout:g} s") from None
        except CdpError as error:
            raise BrowserError(f"looking at {url}: {error}") from error
        return PageLook(
            url=url,
            screenshot_png=png,
            console_errors=tuple(self._tab.console_errors),
            requests=tuple(self._tab.requests),
        )

    async def evaluate(self, expression: str, *, timeout: float = EVALUATE_TIMEOUT) -> Json:
        """The JSON value of ``expression`` in the page last opened (promises are awaited)."""
        if self._tab is None:
            raise BrowserError("evaluate needs a page: call open(url) first")
        try:
            result = await self._connected().call(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True, "awaitPromise": True},
                session_id=self._tab.session_id,
                timeout=timeout,
            )
        except CdpError as error:
            raise BrowserError(f"evaluating {expression!r}: {error}") from error
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {_exception_text(result)}")
        value = result["result"]
        if "unserializableValue" in value:
            raise BrowserError(f"{expression!r} is not JSON: {value['unserializableValue']}")
        answer: Json = value.get("value")
        return answer

    def _connected(self) -> CdpConnection:
        if self._cdp is None:
            raise BrowserError("the browser is not running: use `async with Browser()`")
        return self._cdp


class _Tab:
    """One page target, attached with its own session; collects its events as they come."""

    def __init__(self, cdp: CdpConnection, target_id: str, session_id: str) -> None:
        self._cdp = cdp
        self._target_id = target_id
        self.session_id = session_id
        self.console_errors: list[str] = []
        self.requests: list[str] = []
        self._loaded: set[str] = set()
        self._lifecycle = asyncio.Event()

    @classmethod
    async def opened(cls, cdp: CdpConnection, width: int, height: int) -> _Tab:
        target = await cdp.call("Target.createTarget", {"url": "about:blank"})
        attached = await cdp.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        tab = cls(cdp, target["targetId"], attached["sessionId"])
        cdp.listen(tab.session_id, tab.on_event)
        for domain in ("Page", "Runtime", "Network", "Log"):
            await tab.call(f"{domain}.enable")
        await tab.call("Page.setLifecycleEventsEnabled", {"enabled": True})
        await tab.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return tab

    async def call(self, method: str, params: Message | None = None) -> Message:
        return await self._cdp.call(method, params, session_id=self.session_id)

    async def navigate(self, url: str) -> None:
        """Go to ``url`` and wait for the load event of that navigation."""
        started = await self.call("Page.navigate", {"url": url})
        if started.get("errorText"):
            raise BrowserError(f"{url} could not be opened: {started['errorText']}")
        loader = started.get("loaderId", "")
        while loader not in self._loaded:
            self._lifecycle.clear()
            await self._lifecycle.wait()

    async def screenshot(self) -> bytes:
        """A PNG of the whole page, beyond the viewport, at the emulated width."""
        metrics = await self.call("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        clip = {
            "x": 0,
            "y": 0,
            "width": math.ceil(size["width"]),
            "height": math.ceil(size["height"]),
            "scale": 1,
        }
        shot = await self.call(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        return base64.b64decode(shot["data"])

    async def close(self) -> None:
        self._cdp.forget(self.session_id)
        with contextlib.suppress(CdpError):
            await self._cdp.call("Target.closeTarget", {"targetId": self._target_id})

    def on_event(self, method: str, params: Message) -> None:
        """Keep what a test asks about; runs in the connection's reader, so it must not raise."""
        if method == "Network.requestWillBeSent":
            self.requests.append(str(params.get("request", {}).get("url", "")))
        elif method == "Runtime.exceptionThrown":
            self.console_errors.append(f"exception: {_exception_text(params)}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ERROR_CONSOLE_TYPES:
            self.console_errors.append(f"console.{params.get('type')}: {_console_text(params)}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.console_errors.append(_log_text(params["entry"]))
        elif method == "Page.lifecycleEvent" and params.get("name") == "load":
            self._loaded.add(str(params.get("loaderId", "")))
            self._lifecycle.set()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme)


def _exception_text(holder: Message) -> str:
    details = holder.get("exceptionDetails", {})
    exception = details.get("exception", {})
    text = str(details.get("text", "Uncaught"))
    thrown = str(exception.get("description") or exception.get("value") or "").strip()
    if thrown:
        text = f"{text} {thrown.splitlines()[0]}"
    where = f" ({details['url']}:{details.get('lineNumber', 0) + 1})" if details.get("url") else ""
    return text + where


def _log_text(entry: Message) -> str:
    where = f" ({entry['url']})" if entry.get("url") else ""
    return f"log {entry.get('source', '?')}: {entry.get('text')}{where}"


def _console_text(params: Message) -> str:
    words = [
        str(arg["value"]) if "value" in arg else str(arg.get("description", arg.get("type")))
        for arg in params.get("args", [])
    ]
    frames = params.get("stackTrace", {}).get("callFrames", [])
    where = f" ({frames[0]['url']}:{frames[0]['lineNumber'] + 1})" if frames else ""
    return " ".join(words) + where
