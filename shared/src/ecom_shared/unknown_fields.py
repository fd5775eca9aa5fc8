"""Counting the fields an app sends that the product does not know.

An app release that adds a field must not stop the stream: the message is accepted and the
field ignored, but an operator should see it. Each name is counted in a metric and logged
once per process. Names come from message content, so at most :data:`MAX_NAMES` get a label
of their own; the rest are counted under :data:`OTHER`, and the metric's size stays bounded
whatever the apps send.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry

from ecom_shared.events import EventType, Order, Payment
from ecom_shared.observability.logs import get_logger
from ecom_shared.observability.metrics import EventMetrics

MAX_NAMES: Final = 50
OTHER: Final = "(other)"
_MAX_NAME_CHARS: Final = 100

log = get_logger(__name__)


class UnknownFields:
    """Counts the unknown fields of accepted events of one type."""

    def __init__(self, registry: CollectorRegistry, event_type: EventType) -> None:
        self._event_type = event_type
        self._counter = EventMetrics(registry).unknown_fields
        self._seen: set[str] = set()

    def record(self, event: Order | Payment) -> None:
        if not event.model_extra:  # the usual case: one attribute read
            return
        for name in event.model_extra:
            self._counter.labels(self._event_type.value, self._label(name[:_MAX_NAME_CHARS])).inc()

    def _label(self, name: str) -> str:
        if name in self._seen:
            return name
        if len(self._seen) >= MAX_NAMES:
            return OTHER
        self._seen.add(name)
        log.info(
            "event.unknown_field",
            event_type=self._event_type.value,
            field=name,
            outcome="ignored",
        )
        return name
