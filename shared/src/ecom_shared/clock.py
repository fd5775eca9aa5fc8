"""Time: the wall clock, injectable so tests can fix it, and instants as Cassandra counts them.

Every time the pipeline computes with is aware. The drivers hand some back naive (acsylla's
``timestamp`` columns, gcloud-aio's ``publishTime``), always in UTC: :func:`as_utc` is where
such a time is made aware. A CQL ``timestamp`` counts milliseconds since the epoch, a write
timestamp microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

Clock = Callable[[], datetime]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_MILLISECOND: Final = timedelta(milliseconds=1)

_Moment = TypeVar("_Moment", datetime, None)


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: _Moment) -> _Moment:
    """``moment`` made aware, a naive time taken as UTC; an aware time (or None) as it is."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch: Cassandra's write-timestamp unit (``moment`` is aware)."""
    return (moment - EPOCH) // _MICROSECOND


def to_millis(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down: the resolution of a CQL ``timestamp``."""
    return (moment - EPOCH) // _MILLISECOND


def from_millis(millis: int) -> datetime:
    """The instant ``millis`` milliseconds after the epoch, as a CQL ``timestamp`` holds it."""
    return EPOCH + millis * _MILLISECOND
