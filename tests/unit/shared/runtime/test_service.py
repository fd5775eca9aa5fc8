"""``run_async``: signals set the stop event; a late signal cannot change the exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import IO

# A service that drains as soon as it is asked to stop, then takes a while to exit (as closing
# sessions and flushing logs can): the parent signals it again in that window.
_CHILD = textwrap.dedent(
    """
    import asyncio, atexit, sys, time
    from ecom_shared.runtime.service import run_async

    def slow_exit() -> None:
        print("exiting", flush=True)
        time.sleep(1.5)

    atexit.register(slow_exit)

    async def main(stop: asyncio.Event) -> int:
        print("ready", flush=True)
        await stop.wait()
        return 0

    sys.exit(run_async(main))
    """
)


def _wait_for_line(stream: IO[str], wanted: str) -> None:
    for line in stream:
        if line.strip() == wanted:
            return
    raise AssertionError(f"the child ended without printing {wanted!r}")


def _run_and_signal_twice() -> int:
    argv = [sys.executable, "-c", _CHILD]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=os.environ.copy()) as child:
        assert child.stdout is not None
        _wait_for_line(child.stdout, "ready")
        child.send_signal(signal.SIGTERM)  # the drain: main returns 0
        _wait_for_line(child.stdout, "exiting")  # log lines come before it
        child.send_signal(signal.SIGTERM)  # a second one while the process exits
        return child.wait(timeout=30)


def test_a_second_sigterm_while_exiting_keeps_the_clean_exit_code() -> None:
    assert _run_and_signal_twice() == 0
