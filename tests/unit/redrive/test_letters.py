"""Reading a dead letter: its reason, source and age, and the message it restores, byte for
byte, with only the attributes the dead-lettering added taken off."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ecom_redrive.letters import DELIVERY_LIMIT, UNKNOWN, read_letter
from ecom_shared.pubsub.client import (
    FIRST_PUBLISHED,
    OutgoingMessage,
    ReceivedMessage,
    first_published,
)
from ecom_shared.pubsub.deadletter import DeadLetters
from tests.fakes import FakePublisher, received

BODY = b'{"order_id": 7, "order_status": "shipped"}\n'
WHEN = datetime(2026, 3, 1, 12, tzinfo=UTC)


def as_received(message: OutgoingMessage) -> ReceivedMessage:
    return received(message.data, dict(message.attributes), WHEN)


async def dead_letter_of(original: ReceivedMessage) -> ReceivedMessage:
    """What the consumers' own dead-lettering publishes for ``original``."""
    publisher = FakePublisher()
    await DeadLetters(publisher, "dead-letter").send(
        original, subscription="orders-sub", reason="invalid_value", detail="order_status: ..."
    )
    [(_, message)] = publisher.sent
    return as_received(message)


@pytest.mark.parametrize(
    "attributes", [{}, {"event_type": "order", "schema_version": "2", "x-é": "ü ✓"}]
)
async def test_a_refused_message_is_restored_byte_for_byte(attributes: dict[str, str]) -> None:
    original = received(BODY, attributes)
    letter = read_letter(await dead_letter_of(original))
    # The body and the attributes as sent, and when the message was first published: the
    # consumers rank a redriven version there, so a redrive cannot undo a newer version.
    first = original.publish_time.isoformat()
    assert letter.restored == OutgoingMessage(BODY, {**attributes, FIRST_PUBLISHED: first})
    assert (letter.reason, letter.source, letter.dead_lettered_at) == (
        "invalid_value",
        "orders-sub",
        WHEN,
    )


def test_a_forwarded_message_loses_only_pubsubs_attributes() -> None:
    attributes = {
        "event_type": "order",
        "error_reason": "an attribute of the app's own",
        "CloudPubSubDeadLetterSourceSubscription": "projects/p/subscriptions/orders-sub",
        "CloudPubSubDeadLetterSourceSubscriptionProject": "p",
        "CloudPubSubDeadLetterSourceDeliveryCount": "20",
        "CloudPubSubDeadLetterSourceTopicPublishTime": "2026-03-01T11:00:00Z",
    }
    letter = read_letter(received(BODY, attributes, WHEN))
    assert letter.reason == DELIVERY_LIMIT
    assert letter.source == "orders-sub"
    assert letter.restored == OutgoingMessage(
        BODY,
        {
            "event_type": "order",
            "error_reason": "an attribute of the app's own",
            FIRST_PUBLISHED: "2026-03-01T11:00:00Z",
        },
    )


async def test_clipped_original_attributes_are_not_restored() -> None:
    big = {f"k{i}": "v" * 100 for i in range(20)}  # over 1,024 bytes as JSON: clipped
    letter = read_letter(await dead_letter_of(received(BODY, big)))
    assert letter.restored is None
    assert "clipped" in letter.why_not


@pytest.mark.parametrize(
    ("attributes", "why"),
    [
        ({"error_reason": "invalid_json"}, "names no source"),
        ({"source_subscription": "orders-sub"}, "no original_attributes"),
        ({"source_subscription": "s", "original_attributes": "[1]"}, "not a map"),
        ({"source_subscription": "s", "original_attributes": '{"a": 1}'}, "not a map"),
    ],
)
def test_what_cannot_be_restored_says_why(attributes: dict[str, str], why: str) -> None:
    letter = read_letter(received(BODY, attributes, WHEN))
    assert letter.restored is None
    assert why in letter.why_not


async def test_an_empty_message_cannot_be_republished() -> None:
    letter = read_letter(await dead_letter_of(received(None)))
    assert letter.restored is None
    assert "empty" in letter.why_not
    assert letter.source == "orders-sub"


def test_a_message_with_no_attributes_at_all_is_unknown() -> None:
    letter = read_letter(received(BODY, {}, WHEN))
    assert (letter.reason, letter.source, letter.restored) == (UNKNOWN, None, None)


def test_original_attributes_survive_json_round_trip_of_odd_text() -> None:
    odd = {"k": 'quote " backslash \\ newline \n tab \t nul \x00'}
    text = json.dumps(odd, ensure_ascii=False)
    letter = read_letter(
        received(BODY, {"source_subscription": "s", "original_attributes": text}, WHEN)
    )
    assert letter.restored == OutgoingMessage(BODY, odd)


async def test_a_message_redriven_again_keeps_its_first_publication() -> None:
    first = datetime(2026, 2, 1, 8, tzinfo=UTC)
    redriven = received(BODY, {FIRST_PUBLISHED: first.isoformat()}, WHEN)
    letter = read_letter(await dead_letter_of(redriven))
    assert letter.restored is not None
    assert letter.restored.attributes[FIRST_PUBLISHED] == first.isoformat()


def test_the_consumers_take_a_redriven_message_as_published_when_it_first_was() -> None:
    earlier = datetime(2026, 2, 1, 8, tzinfo=UTC)
    assert first_published(earlier.isoformat(), WHEN) == earlier
    assert first_published(None, WHEN) == WHEN
    assert first_published("not a time", WHEN) == WHEN
    assert first_published("2026-02-01T08:00:00", WHEN) == WHEN  # no offset: no instant
    assert first_published(datetime(2026, 4, 1, tzinfo=UTC).isoformat(), WHEN) == WHEN  # later
