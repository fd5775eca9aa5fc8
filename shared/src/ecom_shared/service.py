"""Running a service: uvloop, signal handling, exit codes.

Signal handlers only set a stop event; the service's coroutine drains and returns its exit
code (0 when asked to stop, 1 when it crashed).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import uvloop

from ecom_shared.logs import get_logger

log = get_logger(__name__)

ServiceMain = Callable[[asyncio.Event], Awaitable[int]]


def run_async(main: ServiceMain) -> int:
    """Run ``main(stop)`` on uvloop; SIGTERM and SIGINT set ``stop``."""
    return uvloop.run(_supervise(main))


async def _supervise(main: ServiceMain) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, stop, sig)
    try:
        return await main(stop)
    except Exception as exc:
        log.critical("service.crashed", exc_info=exc)
        return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    if not stop.is_set():
        log.info("service.stopping", signal=sig.name)
    stop.set()
