"""A message planned for publishing, and a chunk of them in publishing phases."""

from __future__ import annotations

from dataclasses import dataclass, field

from ecom_shared.events import EventType


@dataclass(frozen=True, slots=True)
class Planned:
    """One message to publish, and its manifest line."""

    topic_kind: EventType  # which topic: orders or payments
    data: bytes
    attributes: dict[str, str]
    record: str


@dataclass(slots=True)
class Chunk:
    early: list[Planned] = field(default_factory=list)
    main: list[Planned] = field(default_factory=list)
    late: list[Planned] = field(default_factory=list)

    def phases(self) -> list[list[Planned]]:
        return [self.early, self.main, self.late]

    def __len__(self) -> int:
        return len(self.early) + len(self.main) + len(self.late)
