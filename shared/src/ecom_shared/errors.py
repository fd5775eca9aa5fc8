"""The pipeline's error hierarchy. Business code raises these; the policy decides what follows.

``retriable`` is data on the class (the aiokafka way): a permanent error can never succeed and
its message is dead-lettered and acked; a retriable one is redelivered later.
"""

from __future__ import annotations

from typing import ClassVar, Final

CASSANDRA: Final = "cassandra"
PUBSUB: Final = "pubsub"


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    retriable: ClassVar[bool] = False
    dependency: ClassVar[str | None] = None
    """For a retriable error: the dependency that did not answer."""

    @property
    def label(self) -> str:
        """What the error policy counts it as (the ``reason`` label): the class name."""
        return type(self).__name__


class InvalidMessage(PipelineError):
    """The message can never be processed: bad JSON, schema violation, absurd value."""

    retriable = False

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StoreUnavailable(PipelineError):
    """Cassandra cannot take this request now (no connection, a timeout, too few replicas,
    overloaded, a failed read or write, a refused permission): try again later.

    ``driver_error`` names the driver's exception it stands for (``CassErrorServerUnauthorized``
    and the like), kept for the logs and the ``reason`` label, ``cassandra:<name>``.
    """

    retriable = True
    dependency = CASSANDRA

    def __init__(self, message: str, *, driver_error: str | None = None) -> None:
        super().__init__(message)
        self.driver_error = driver_error

    @property
    def label(self) -> str:
        return f"cassandra:{self.driver_error}" if self.driver_error else super().label


class PublishFailed(PipelineError):
    """A publish to Pub/Sub did not succeed: try again later."""

    retriable = True
    dependency = PUBSUB


class CassandraConfigError(PipelineError):
    """Cassandra refused who we are or how we connect (credentials, certificates, key):
    a setting is wrong, and retrying cannot help. Messages never contain a secret."""

    retriable = False
