"""Dead letters: the message byte for byte, with attributes that stay within Pub/Sub's limits."""

from __future__ import annotations

from datetime import UTC, datetime

from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.pubsub.deadletter import DeadLetters
from tests.fakes import FakePublisher


async def test_dead_letter_attributes_are_clipped_to_pubsub_limits() -> None:
    publisher = FakePublisher()
    message = ReceivedMessage(
        "a", "m1", datetime(2026, 1, 1, tzinfo=UTC), b"\x00\xff body", {"k": "é" * 2000}
    )
    await DeadLetters(publisher, "dead-letter").send(
        message, subscription="orders-sub", reason="invalid_value", detail="ü" * 5000
    )
    [sent] = publisher.on("dead-letter")
    assert sent.data == b"\x00\xff body"
    assert all(len(v.encode()) <= 1024 for v in sent.attributes.values())
    assert sent.attributes["error_detail"].endswith("...")
