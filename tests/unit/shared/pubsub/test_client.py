"""The Pub/Sub client: publish requests within Pub/Sub's limits, and a pulled message read
from the reply."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from ecom_shared.pubsub.client import OutgoingMessage, ReceivedMessage, _chunks, received_message


def test_requests_carry_at_most_1000_messages() -> None:
    messages = [OutgoingMessage(b"x") for _ in range(2500)]
    assert [len(c) for c in _chunks(messages)] == [1000, 1000, 500]


def test_requests_stay_under_the_size_limit() -> None:
    messages = [OutgoingMessage(b"x" * 3_000_000) for _ in range(5)]
    assert [len(c) for c in _chunks(messages)] == [2, 2, 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T22:27:53.968Z", datetime(2026, 11, 27, 22, 27, 53, 968000, tzinfo=UTC)),
        ("2026-11-27T22:27:53Z", datetime(2026, 11, 27, 22, 27, 53, tzinfo=UTC)),
        # Pub/Sub may send nanoseconds; Python keeps microseconds.
        ("2026-11-27T22:27:53.123456789Z", datetime(2026, 11, 27, 22, 27, 53, 123456, tzinfo=UTC)),
    ],
)
def test_a_pulled_message_is_read_from_the_reply(text: str, expected: datetime) -> None:
    raw = {
        "ackId": "ack-1",
        "deliveryAttempt": 3,
        "message": {
            "messageId": "42",
            "publishTime": text,
            "data": base64.b64encode(b'{"order_id": 1}').decode(),
            "attributes": {"event_type": "order"},
        },
    }
    message = received_message(raw)
    assert message == ReceivedMessage(
        ack_id="ack-1",
        message_id="42",
        publish_time=expected,
        data=b'{"order_id": 1}',
        attributes={"event_type": "order"},
        delivery_attempt=3,
    )
    assert message.publish_time.utcoffset() == timedelta(0)


def test_a_pulled_message_without_body_or_attributes() -> None:
    raw = {"ackId": "a", "message": {"messageId": "1", "publishTime": "2026-01-01T00:00:00Z"}}
    message = received_message(raw)
    assert message.data is None
    assert message.attributes == {}
    assert message.delivery_attempt is None
