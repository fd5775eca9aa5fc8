"""Publishing messages that can never succeed to the dead-letter topic, byte for byte.

This is the failure path: whatever a message holds, building its dead letter never raises.
"""

from __future__ import annotations

import json
from typing import Final

from ecom_shared.pubsub.client import OutgoingMessage, Publisher, ReceivedMessage

_MAX_ATTRIBUTE_BYTES: Final = 1024  # Pub/Sub's limit for one attribute value


def _clip(text: str) -> str:
    """An attribute value: valid UTF-8 (a lone surrogate is written as its ``\\udXXX``
    escape) within Pub/Sub's limit for one value."""
    raw = text.encode("utf-8", errors="backslashreplace")
    if len(raw) <= _MAX_ATTRIBUTE_BYTES:
        return raw.decode("utf-8")
    return raw[: _MAX_ATTRIBUTE_BYTES - 3].decode("utf-8", errors="ignore") + "..."


class DeadLetters:
    """Sends a refused message on with its reason and source in the attributes."""

    def __init__(self, publisher: Publisher, topic: str) -> None:
        self._publisher = publisher
        self._topic = topic

    async def send(
        self, message: ReceivedMessage, *, subscription: str, reason: str, detail: str
    ) -> None:
        attributes = {
            "error_reason": _clip(reason),
            "error_detail": _clip(detail),
            "source_subscription": _clip(subscription),
            "source_message_id": _clip(message.message_id),
            "source_publish_time": message.publish_time.isoformat(),
            "original_attributes": _clip(
                json.dumps(message.attributes, ensure_ascii=False, default=str)
            ),
        }
        await self._publisher.publish(
            self._topic, [OutgoingMessage(data=message.data or b"", attributes=attributes)]
        )
