"""Waiting in tests: poll a condition until it holds, within a deadline; never a bare sleep.

The first looks come a millisecond apart and the pauses double up to ``every`` (0.2 s unless
given), so a fake's new state is seen at once and a real service is not polled hard. A check
is a function or a coroutine function; its (awaited) result counts when true.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Final

import pytest

Check = Callable[[], object]

FIRST_PAUSE: Final = 0.001
EVERY: Final = 0.2


async def within(check: Check, timeout: float, *, every: float = EVERY) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds pass; whether it came to hold."""
    deadline = time.monotonic() + timeout
    pause = min(FIRST_PAUSE, every)
    while not await _holds(check):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, every)
    return True


async def eventually(
    check: Check, timeout: float = 30.0, *, what: str = "the condition", every: float = EVERY
) -> None:
    """Poll ``check`` until it holds; fail the test naming ``what`` after ``timeout`` seconds."""
    if not await within(check, timeout, every=every):
        pytest.fail(f"not within {timeout:g} s: {what}")


def within_blocking(check: Callable[[], object], timeout: float, *, every: float = EVERY) -> bool:
    """:func:`within` for a test that has no event loop: the pauses block."""
    deadline = time.monotonic() + timeout
    pause = min(FIRST_PAUSE, every)
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, every)
    return True


def eventually_blocking(
    check: Callable[[], object],
    timeout: float = 30.0,
    *,
    what: str = "the condition",
    every: float = EVERY,
) -> None:
    """:func:`eventually` for a test that has no event loop."""
    if not within_blocking(check, timeout, every=every):
        pytest.fail(f"not within {timeout:g} s: {what}")


async def _holds(check: Check) -> object:
    outcome = check()
    return await outcome if inspect.isawaitable(outcome) else outcome
