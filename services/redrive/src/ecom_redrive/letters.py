"""What one dead letter says: why it was refused, where it came from, when, and the message it
restores.

Two kinds of message wait on the dead-letter subscription:

- **refused by a consumer** (:class:`ecom_shared.pubsub.deadletter.DeadLetters`): the body byte
  for byte; the attributes are the consumer's only (``error_reason``, ``error_detail``,
  ``source_subscription``, ``source_message_id``, ``source_publish_time``), with the message's
  own attributes kept as one JSON object in ``original_attributes``;
- **forwarded by a subscription's dead-letter policy** after its delivery limit: the body and
  the message's own attributes as they were, plus Pub/Sub's ``CloudPubSubDeadLetterSource*``
  attributes (the subscription, its project, the delivery count, the first publish time).

The restored message is the body and the message's own attributes, nothing the dead-lettering
added. A dead letter that cannot be restored exactly (its ``original_attributes`` clipped at
Pub/Sub's 1,024 bytes for a value, a source that is not named, an empty message, which Pub/Sub
does not accept) is never republished: it says why, and stays.

This module never raises on what a message holds: it reads whatever waits there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ecom_shared.pubsub.client import FIRST_PUBLISHED, OutgoingMessage, ReceivedMessage

REASON: Final = "error_reason"
SOURCE: Final = "source_subscription"
ORIGINAL_ATTRIBUTES: Final = "original_attributes"
CONSUMER_ATTRIBUTES: Final = frozenset(
    {
        REASON,
        "error_detail",
        SOURCE,
        "source_message_id",
        "source_publish_time",
        ORIGINAL_ATTRIBUTES,
    }
)
"""What :class:`~ecom_shared.pubsub.deadletter.DeadLetters` puts on a refused message."""
POLICY_PREFIX: Final = "CloudPubSubDeadLetter"
"""What Pub/Sub's dead-letter policy adds to a message it forwards (``...SourceSubscription``,
``...SourceSubscriptionProject``, ``...SourceDeliveryCount``, ``...SourceTopicPublishTime``)."""
POLICY_SOURCE: Final = "CloudPubSubDeadLetterSourceSubscription"
DELIVERY_LIMIT: Final = "delivery_limit"
"""The reason given to a message the policy forwarded: it failed on every delivery."""
UNKNOWN: Final = "(unknown)"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message on the dead-letter subscription, read."""

    ack_id: str
    message_id: str  # the dead letter's own id
    reason: str
    source: str | None  # the subscription it was refused on, by its short name
    dead_lettered_at: datetime  # the dead letter's publishTime
    restored: OutgoingMessage | None
    why_not: str = ""  # why it cannot be republished, when ``restored`` is None


def read_letter(message: ReceivedMessage) -> DeadLetter:
    attributes = message.attributes
    if any(name.startswith(POLICY_PREFIX) for name in attributes):
        return _letter(message, DELIVERY_LIMIT, attributes.get(POLICY_SOURCE), _forwarded(message))
    if SOURCE in attributes:
        reason = attributes.get(REASON) or UNKNOWN
        return _letter(message, reason, attributes[SOURCE], _refused(message))
    return _letter(message, attributes.get(REASON) or UNKNOWN, None, "it names no source")


def _letter(
    message: ReceivedMessage, reason: str, source: str | None, restored: OutgoingMessage | str
) -> DeadLetter:
    short = source.rsplit("/", 1)[-1] if source else None
    if short is None and isinstance(restored, OutgoingMessage):
        restored = "it names no source"
    if isinstance(restored, OutgoingMessage):
        restored = _with_first_publication(message, restored)
    return DeadLetter(
        ack_id=message.ack_id,
        message_id=message.message_id,
        reason=reason,
        source=short,
        dead_lettered_at=message.publish_time,
        restored=restored if isinstance(restored, OutgoingMessage) else None,
        why_not=restored if isinstance(restored, str) else "",
    )


FIRST_PUBLICATION: Final = (
    "source_publish_time",  # the consumers' dead letters
    "CloudPubSubDeadLetterSourceTopicPublishTime",  # Pub/Sub's dead-letter policy
)
"""Where a dead letter says when its message was first published."""


def _with_first_publication(message: ReceivedMessage, restored: OutgoingMessage) -> OutgoingMessage:
    """The restored message with :data:`~ecom_shared.pubsub.client.FIRST_PUBLISHED`, so that the
    consumers rank its version where its first publication did (a message redriven before keeps
    the time it already carries)."""
    if FIRST_PUBLISHED in restored.attributes:
        return restored
    first = next(
        (message.attributes[k] for k in FIRST_PUBLICATION if k in message.attributes), None
    )
    if first is None:
        return restored
    return OutgoingMessage(
        data=restored.data, attributes={**restored.attributes, FIRST_PUBLISHED: first}
    )


def _forwarded(message: ReceivedMessage) -> OutgoingMessage | str:
    kept = {k: v for k, v in message.attributes.items() if not k.startswith(POLICY_PREFIX)}
    return _message(message.data, kept)


def _refused(message: ReceivedMessage) -> OutgoingMessage | str:
    text = message.attributes.get(ORIGINAL_ATTRIBUTES)
    if text is None:
        return f"it has no {ORIGINAL_ATTRIBUTES}"
    try:
        original = json.loads(text)
    except ValueError:
        return f"its {ORIGINAL_ATTRIBUTES} were clipped (over 1,024 bytes)"
    if not isinstance(original, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in original.items()
    ):
        return f"its {ORIGINAL_ATTRIBUTES} are not a map of text to text"
    return _message(message.data, original)


def _message(data: bytes | None, attributes: dict[str, str]) -> OutgoingMessage | str:
    if not data and not attributes:
        return "it is empty (Pub/Sub accepts no message without data or attributes)"
    return OutgoingMessage(data=data or b"", attributes=attributes)
