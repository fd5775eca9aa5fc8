"""Start and stop Debian's headless Chromium with its DevTools endpoint on a free port.

The binary is ``$ECOM_CHROMIUM`` when set, else ``chromium`` on the PATH (Debian's package
``chromium``, which ``scripts/bootstrap`` installs as root). Chromium runs in a process group
of its own, so stopping it also ends its renderer and GPU processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from tests.polling import within

BINARY_ENV: Final = "ECOM_CHROMIUM"
BINARY_NAME: Final = "chromium"
STOP_TIMEOUT: Final = 5.0
STDERR_TAIL: Final = 20
_LISTENING: Final = re.compile(r"DevTools listening on (ws://\S+)")

FLAGS: Final = (
    "--headless=new",
    "--remote-debugging-port=0",
    # Chromium cannot sandbox itself as root, nor in containers without user namespaces; the
    # pages opened are the tests' own, served on loopback.
    "--no-sandbox",
    # Containers often give /dev/shm 64 MB, too little for Chromium; Debian's launcher adds this
    # flag itself only when it can measure /dev/shm, which fails when /dev/shm is mounted twice.
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    # No traffic of the browser's own: a test's list of requests is the page's alone.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
)


class BrowserError(Exception):
    """Chromium is missing, did not start, or a page could not be looked at."""


class _ExitedError(Exception):
    """Chromium's stderr ended before it named its DevTools endpoint."""


def chromium_binary() -> str:
    """The Chromium to run: ``$ECOM_CHROMIUM``, else ``chromium`` on the PATH."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise BrowserError(f"{BINARY_ENV}={configured} is not an executable file")
        return found
    found = shutil.which(BINARY_NAME)
    if found is None:
        raise BrowserError(
            f"{BINARY_NAME} not found on the PATH: install Debian's package {BINARY_NAME!r} "
            f"(./scripts/bootstrap does as root; else apt-get install {BINARY_NAME}) "
            f"or set {BINARY_ENV} to a Chromium binary"
        )
    return found


@contextlib.asynccontextmanager
async def running_chromium(binary: str, profile: Path, timeout: float) -> AsyncIterator[str]:
    """Run Chromium on ``profile`` (an empty folder); yield its DevTools websocket URL."""
    process = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    tail: deque[str] = deque(maxlen=STDERR_TAIL)
    endpoint: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    assert process.stderr is not None
    reader = asyncio.create_task(_read_stderr(process.stderr, tail, endpoint), name="chromium-err")
    try:
        try:
            async with asyncio.timeout(timeout):
                url = await endpoint
        except TimeoutError:
            raise BrowserError(
                f"{binary} gave no DevTools endpoint within {timeout:g} s; its stderr ends:\n"
                + "\n".join(tail)
            ) from None
        except _ExitedError:
            code = await process.wait()
            raise BrowserError(
                f"{binary} exited ({code}) before it was ready; its stderr ends:\n"
                + "\n".join(tail)
            ) from None
        yield url
    finally:
        await _stop(process)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _read_stderr(
    stderr: asyncio.StreamReader, tail: deque[str], endpoint: asyncio.Future[str]
) -> None:
    """Read all of Chromium's stderr (so it never blocks on a full pipe), keeping its tail."""
    async for raw in stderr:
        line = raw.decode(errors="replace").rstrip()
        tail.append(line)
        found = _LISTENING.search(line)
        if found and not endpoint.done():
            endpoint.set_result(found.group(1))
    if not endpoint.done():
        endpoint.set_exception(_ExitedError())


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End Chromium's process group: politely, then by force after :data:`STOP_TIMEOUT`.

    The signal goes to the whole group while its leader is still unreaped, so it reaches the
    renderer and GPU helpers too and never a process that merely reused the id.
    """
    _signal_group(process.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            await process.wait()
    except TimeoutError:
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()
    # The helpers end a moment after the browser; until then they may write to the profile.
    if not await within(lambda: not _group_alive(process.pid), STOP_TIMEOUT):
        _signal_group(process.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies waiting for init do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # After the command's closing parenthesis: state, parent id, group id.
            state, _, group = stat.read_text().rpartition(")")[2].split()[:3]
            if int(group) == pgid and state != "Z":
                return True
    return False


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
