"""Crash points: a fault hook the fault-injection tests switch on, off in every normal run.

Four places in the pipeline hold a fact that is durable but not yet acknowledged, where a
crash is the hardest test of at-least-once delivery:

- ``after_write_before_ack``: a consumer's batch is written to Cassandra (or dead-lettered),
  its acks not sent yet (order and payment consumers).
- ``after_park_before_ack``: a payment is inserted into the DLQ table, neither announced on
  ``dlq-payments`` nor acked (payment consumer).
- ``after_reconcile_before_delete``: a parked payment is written into its order's row and its
  DLQ row not yet deleted (:func:`~ecom_shared.completion.complete_parked`: the order consumer
  as the order arrives, the payment consumer when the order landed while it parked the
  payment, or the DLQ worker). A consumer has not acked its message there either: redelivered,
  the order completes the join again, while the payment finds its order, is written to the
  row and leaves the DLQ row to the worker's next pass.
- ``after_republish_before_ack``: ``ecom-redrive`` has republished dead letters to their source
  topic and not yet acked them on the dead-letter subscription: they come back and the next
  run republishes them again.

``ECOM_FAULTS__CRASH_AT=<point>`` arms one point, and ``ECOM_FAULTS__CRASH_AFTER=N`` fires it
the N-th time the process reaches it (default 1). Firing logs ``fault.crash`` and kills the
process with SIGKILL at once: no cleanup, no ack, no drain, as a crash would. This is for
tests only. Unset (the default), reaching a point costs one identity comparison.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from enum import StrEnum
from typing import NoReturn

import structlog
from pydantic import BaseModel, ConfigDict, Field

# structlog directly, not ecom_shared.observability.logs: the settings module imports this one.
log = structlog.stdlib.get_logger(__name__)


class CrashPoint(StrEnum):
    AFTER_WRITE_BEFORE_ACK = "after_write_before_ack"
    AFTER_PARK_BEFORE_ACK = "after_park_before_ack"
    AFTER_RECONCILE_BEFORE_DELETE = "after_reconcile_before_delete"
    AFTER_REPUBLISH_BEFORE_ACK = "after_republish_before_ack"


class FaultSettings(BaseModel):
    """``ECOM_FAULTS__*``: for fault-injection tests only; leave unset in any real run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crash_at: CrashPoint | None = Field(
        default=None, description="the crash point to arm (tests only); unset: none"
    )
    crash_after: int = Field(
        default=1, ge=1, le=1_000_000, description="fire the N-th time the point is reached"
    )


Die = Callable[[CrashPoint], NoReturn]


def crash_now(point: CrashPoint) -> NoReturn:
    """Log the crash (the stdout handler flushes each line), then die by SIGKILL."""
    log.critical("fault.crash", point=point.value, pid=os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)
    os._exit(137)  # not reached: SIGKILL to oneself is delivered before kill() returns


class CrashHook:
    """Dies the ``after``-th time ``point`` is reached; with no point, does nothing."""

    __slots__ = ("_after", "_die", "_point", "_reached")

    def __init__(
        self, point: CrashPoint | None = None, after: int = 1, die: Die = crash_now
    ) -> None:
        self._point = point
        self._after = after
        self._die = die
        self._reached = 0

    @classmethod
    def from_settings(cls, settings: FaultSettings) -> CrashHook:
        if settings.crash_at is not None:
            log.warning("fault.armed", point=settings.crash_at.value, after=settings.crash_after)
        return cls(settings.crash_at, settings.crash_after)

    def reached(self, point: CrashPoint) -> None:
        """Call where ``point`` is in the code. Off, this is one comparison and a return."""
        if point is not self._point:
            return
        self._reached += 1
        if self._reached >= self._after:
            self._die(point)


NO_CRASH = CrashHook()
"""The hook of every normal run: no point armed."""
