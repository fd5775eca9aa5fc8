"""What every consumer does first with a message: read its event.

Parse and validate the body (:func:`~ecom_shared.events.parse_event`), refuse event times far
after the message's publish time (:func:`~ecom_shared.events.check_event_times`), then count
the fields the product does not know (:class:`~ecom_shared.unknown_fields.UnknownFields`).
Anything refused raises :class:`~ecom_shared.errors.InvalidMessage`.
"""

from __future__ import annotations

from datetime import timedelta

from ecom_shared.events import EventT, check_event_times, parse_event
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.unknown_fields import UnknownFields


def read_event(
    model: type[EventT],
    message: ReceivedMessage,
    max_ahead: timedelta,
    unknown_fields: UnknownFields | None,
) -> EventT:
    event = parse_event(model, message.data, message.attributes)
    check_event_times(event, message.publish_time, max_ahead)
    if unknown_fields is not None:
        unknown_fields.record(event)
    return event
