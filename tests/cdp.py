"""A small client for the Chrome DevTools Protocol over aiohttp's websocket client.

One connection to the browser's endpoint carries every target: a page is attached with
``flatten`` and addressed by its session id. Commands are matched to their replies by id;
events go to the listener registered for their session. Every command has a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, Self, TypeAlias

import aiohttp

Json: TypeAlias = dict[str, "Json"] | list["Json"] | str | int | float | bool | None
Params: TypeAlias = Mapping[str, Any]
Message: TypeAlias = dict[str, Any]
Listener = Callable[[str, Message], None]

COMMAND_TIMEOUT: Final = 30.0
CONNECT_TIMEOUT: Final = 10.0
# A full-page screenshot comes back base64-encoded in one message and can be many megabytes.
MAX_MESSAGE: Final = 256 * 1024 * 1024


class CdpError(Exception):
    """A DevTools command failed, timed out, or the connection to the browser was lost."""


class CdpConnection:
    """The browser-wide DevTools websocket; an async context manager."""

    def __init__(self, ws_url: str) -> None:
        self._ws_url = ws_url
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._listeners: dict[str, Listener] = {}
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lost: str | None = None

    async def __aenter__(self) -> Self:
        # The timeout bounds the handshake; the connection itself may then stay idle any time.
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CONNECT_TIMEOUT))
        try:
            self._ws = await self._http.ws_connect(
                self._ws_url,
                max_msg_size=MAX_MESSAGE,
                timeout=aiohttp.ClientWSTimeout(ws_close=CONNECT_TIMEOUT),
            )
        except BaseException:
            await self._http.close()
            raise
        self._reader = asyncio.create_task(self._read(self._ws), name="cdp-reader")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reading and close the websocket; idempotent."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        self._fail_pending("the connection was closed")

    def listen(self, session_id: str, listener: Listener) -> None:
        """Send the events of ``session_id`` to ``listener(method, params)``."""
        self._listeners[session_id] = listener

    def forget(self, session_id: str) -> None:
        self._listeners.pop(session_id, None)

    async def call(
        self,
        method: str,
        params: Params | None = None,
        *,
        session_id: str | None = None,
        timeout: float = COMMAND_TIMEOUT,
    ) -> Message:
        """Send one command and return its result; :class:`CdpError` on an error or timeout."""
        if self._ws is None or self._lost is not None:
            raise CdpError(f"{method}: not connected to the browser ({self._lost or 'closed'})")
        command: Message = {"id": next(self._ids), "method": method, "params": dict(params or {})}
        if session_id is not None:
            command["sessionId"] = session_id
        reply: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[command["id"]] = reply
        try:
            await self._ws.send_str(json.dumps(command))
            async with asyncio.timeout(timeout):
                answer = await reply
        except TimeoutError:
            raise CdpError(f"{method}: no answer from the browser within {timeout:g} s") from None
        finally:
            self._pending.pop(command["id"], None)
        if "error" in answer:
            raise CdpError(f"{method} failed: {answer['error'].get('message', answer['error'])}")
        result: Message = answer.get("result", {})
        return result

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    break
                self._dispatch(json.loads(frame.data))
        finally:
            self._lost = f"the websocket ended (close code {ws.close_code})"
            self._fail_pending(self._lost)

    def _dispatch(self, message: Message) -> None:
        if "id" in message:
            reply = self._pending.get(message["id"])
            if reply is not None and not reply.done():
                reply.set_result(message)
            return
        listener = self._listeners.get(message.get("sessionId", ""))
        if listener is not None:
            listener(message.get("method", ""), message.get("params", {}))

    def _fail_pending(self, why: str) -> None:
        for reply in self._pending.values():
            if not reply.done():
                reply.set_exception(CdpError(f"no answer from the browser: {why}"))
        self._pending.clear()
