"""A message planned for publishing, and a chunk of them in publishing phases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ecom_shared.events import EventType

Label = Literal["orders", "payments", "duplicates", "malformed"]
"""What the producer counts a message as (its progress log and its published metric)."""


@dataclass(frozen=True, slots=True)
class Planned:
    """One message to publish, and its manifest line. Events carry no attributes (the apps
    send none); only a malformed message without a body has one, since Pub/Sub refuses a
    message with neither."""

    topic_kind: EventType  # which topic: orders or payments
    data: bytes
    record: str
    label: Label
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Chunk:
    """A chunk's messages in the order of their phases (see :mod:`ecom_producer.stream`).
    No phase holds two messages for one order id on the orders topic."""

    early: list[Planned] = field(default_factory=list)
    main: list[Planned] = field(default_factory=list)
    late: list[Planned] = field(default_factory=list)
    again: list[Planned] = field(default_factory=list)

    def phases(self) -> list[list[Planned]]:
        return [self.early, self.main, self.late, self.again]

    def messages(self) -> list[Planned]:
        """Every message, in publishing order."""
        return [*self.early, *self.main, *self.late, *self.again]

    def __len__(self) -> int:
        return sum(len(phase) for phase in self.phases())
