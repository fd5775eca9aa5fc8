"""The one error policy: what happens to a message whose handling raised.

- :class:`~ecom_shared.errors.InvalidMessage` → published unchanged to the dead-letter topic
  with its reason, then acked.
- A retriable error (Cassandra or Pub/Sub unavailable, a timeout) → redelivered after a delay,
  and the consumer pauses pulling until the dependency answers again.
- Anything else is a bug or a failure nobody foresaw → redelivered after a delay; the
  subscription's dead-letter policy takes it out of the stream after too many attempts.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

import aiohttp
from acsylla import errors as cass_errors

from ecom_shared.errors import CASSANDRA, PUBSUB, InvalidMessage, PipelineError


class Action(enum.Enum):
    ACK = "ack"
    DEAD_LETTER = "dead_letter"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    dependency: str | None = None
    """The dependency that failed ("cassandra" or "pubsub"), if the error says one did."""

    @property
    def dependency_down(self) -> bool:
        return self.dependency is not None


# Errors that say "the store or the network is not there right now", not "this message is bad".
_TRANSIENT_STORE = (
    cass_errors.CassErrorLibNoHostsAvailable,
    cass_errors.CassErrorLibRequestTimedOut,
    cass_errors.CassErrorLibUnableToConnect,
    cass_errors.CassErrorLibRequestQueueFull,
    cass_errors.CassErrorLibNoStreams,
    cass_errors.CassErrorLibWriteError,
    cass_errors.CassErrorServerUnavailable,
    cass_errors.CassErrorServerOverloaded,
    cass_errors.CassErrorServerIsBootstrapping,
    cass_errors.CassErrorServerWriteTimeout,
    cass_errors.CassErrorServerReadTimeout,
    cass_errors.CassExceptionConnectionError,
)
_TRANSIENT_NETWORK = (aiohttp.ClientError, TimeoutError, ConnectionError, asyncio.TimeoutError)


def decide(exc: BaseException) -> Decision:
    """Classify an exception raised while handling one message."""
    if isinstance(exc, InvalidMessage):
        return Decision(Action.DEAD_LETTER, exc.reason)
    if isinstance(exc, PipelineError):
        return Decision(Action.RETRY, type(exc).__name__, exc.dependency)
    if isinstance(exc, _TRANSIENT_STORE):
        return Decision(Action.RETRY, f"cassandra:{type(exc).__name__}", CASSANDRA)
    if isinstance(exc, _TRANSIENT_NETWORK):
        # Within a consumer, HTTP traffic is Pub/Sub's; Cassandra's errors are acsylla's own.
        return Decision(Action.RETRY, f"network:{type(exc).__name__}", PUBSUB)
    return Decision(Action.RETRY, f"unexpected:{type(exc).__name__}")


def is_transient(exc: BaseException) -> bool:
    """True for failures of a dependency (retry later), false for everything else."""
    return decide(exc).dependency_down
