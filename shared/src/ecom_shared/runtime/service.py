"""Running a service: uvloop, signal handling, exit codes.

Signal handlers only set a stop event; the service's coroutine drains and returns its exit
code (0 when asked to stop, 1 when it crashed). Once it has returned, SIGTERM and SIGINT are
ignored while the process closes its loop and exits: a second signal then (an orchestrator
that signals again, a second Ctrl-C) cannot turn a clean drain into a death by signal.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import uvloop
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from ecom_shared.errors import PipelineError
from ecom_shared.observability.logs import get_logger

log = get_logger(__name__)

ServiceMain = Callable[[asyncio.Event], Awaitable[int]]
SettingsT = TypeVar("SettingsT", bound=BaseSettings)
EXIT_BAD_SETTINGS = 2


def load_settings(model: type[SettingsT]) -> SettingsT:
    """Build settings from the environment, or exit 2 naming each bad variable (never its value)."""
    try:
        return model()
    except ValidationError as exc:
        lines = [f"invalid settings ({exc.error_count()}):"]
        for error in exc.errors(include_url=False, include_input=False, include_context=False):
            name = "ECOM_" + "__".join(str(part).upper() for part in error["loc"])
            lines.append(f"  {name}: {error['msg']}")
        sys.stderr.write("\n".join(lines) + "\n")
        raise SystemExit(EXIT_BAD_SETTINGS) from None


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
    except PipelineError as exc:
        if exc.retriable:
            log.critical("service.crashed", exc_info=exc)
        else:  # a setting or a table is wrong: the message says which, a traceback adds nothing
            log.critical("service.refused", error=str(exc), error_type=type(exc).__name__)
        return 1
    except Exception as exc:
        log.critical("service.crashed", exc_info=exc)
        return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)  # puts back the default, which would kill us
            signal.signal(sig, signal.SIG_IGN)


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    if not stop.is_set():
        log.info("service.stopping", signal=sig.name)
    stop.set()
