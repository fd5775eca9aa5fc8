"""The one error policy: what happens to a message whose handling raised.

- :class:`~ecom_shared.errors.InvalidMessage` → published unchanged to the dead-letter topic
  with its reason, then acked.
- A retriable :class:`~ecom_shared.errors.PipelineError` (Cassandra cannot take the request
  now, a publish failed) → redelivered after a delay, and the consumer pauses pulling until
  the dependency the error names answers its probe again.
- Anything else is a bug or a failure nobody foresaw → redelivered after a delay; the
  subscription's dead-letter policy takes it out of the stream after too many attempts.

The decision reads the error's own attributes (``retriable``, ``dependency``), never a list of
a library's exception classes: the store and the publisher raise the pipeline's errors for
their dependency's failures (:func:`ecom_shared.cassandra.session.execute`,
:class:`ecom_shared.pubsub.client.PubSubPublisher`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ecom_shared.errors import InvalidMessage, PipelineError


class Action(enum.Enum):
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


def decide(exc: BaseException) -> Decision:
    """Classify an exception raised while handling one message."""
    if isinstance(exc, InvalidMessage):
        return Decision(Action.DEAD_LETTER, exc.reason)
    if isinstance(exc, PipelineError):
        return Decision(Action.RETRY, exc.label, exc.dependency if exc.retriable else None)
    return Decision(Action.RETRY, f"unexpected:{type(exc).__name__}")


def is_transient(exc: BaseException) -> bool:
    """True for failures of a dependency (retry later), false for everything else."""
    return decide(exc).dependency_down
