"""``ecom-setup`` on a subscription that exists already: what it reads back and reports."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from ecom_shared.pubsub.client import ack_deadline_of
from ecom_shared.pubsub.provision import (
    Difference,
    report_difference,
    subscription_body,
    subscription_differences,
    subscription_specs,
)
from ecom_shared.settings import PubSubSettings

SETTINGS = PubSubSettings(project_id="p", ack_deadline_seconds=60, max_delivery_attempts=20)
ORDERS, _, _, DEAD_LETTERS = subscription_specs(SETTINGS)
DEAD_LETTER_TOPIC = "projects/p/topics/dead-letter"


def as_created(spec_index: int = 0) -> dict[str, Any]:
    """What a GET answers for a subscription set-up made (the emulator adds more fields)."""
    spec = subscription_specs(SETTINGS)[spec_index]
    return {
        "name": f"projects/p/subscriptions/{spec.name}",
        "topic": f"projects/p/topics/{spec.topic}",
        **subscription_body(spec, SETTINGS),
    }


def fields(found: list[Difference]) -> dict[str, tuple[object, object, bool]]:
    return {d.field: (d.expected, d.actual, d.serious) for d in found}


def test_a_subscription_as_set_up_would_make_it_differs_in_nothing() -> None:
    assert subscription_differences(ORDERS, SETTINGS, as_created()) == []
    assert subscription_differences(DEAD_LETTERS, SETTINGS, as_created(3)) == []


def test_another_deadline_and_no_dead_letter_policy_are_both_reported() -> None:
    existing = as_created() | {"ackDeadlineSeconds": 10}
    del existing["deadLetterPolicy"]
    assert fields(subscription_differences(ORDERS, SETTINGS, existing)) == {
        "ackDeadlineSeconds": (60, 10, False),
        "deadLetterPolicy": (DEAD_LETTER_TOPIC, None, True),
    }


def test_another_topic_dead_letter_topic_and_delivery_limit() -> None:
    existing = as_created() | {
        "topic": "projects/p/topics/other",
        "deadLetterPolicy": {"deadLetterTopic": "projects/p/topics/x", "maxDeliveryAttempts": 5},
    }
    assert fields(subscription_differences(ORDERS, SETTINGS, existing)) == {
        "topic": ("projects/p/topics/orders", "projects/p/topics/other", True),
        "deadLetterPolicy.deadLetterTopic": (DEAD_LETTER_TOPIC, "projects/p/topics/x", True),
        "deadLetterPolicy.maxDeliveryAttempts": (20, 5, False),
    }


def test_a_subscription_that_needs_no_dead_letter_policy_is_not_asked_for_one() -> None:
    existing = as_created(3) | {"ackDeadlineSeconds": 600}
    assert fields(subscription_differences(DEAD_LETTERS, SETTINGS, existing)) == {
        "ackDeadlineSeconds": (60, 600, False)
    }


def test_each_difference_is_one_line_an_error_when_messages_could_be_lost_for_good() -> None:
    existing = as_created() | {"ackDeadlineSeconds": 10}
    del existing["deadLetterPolicy"]
    with structlog.testing.capture_logs() as logs:
        for difference in subscription_differences(ORDERS, SETTINGS, existing):
            report_difference(difference)
    assert [(line["log_level"], line["field"]) for line in logs] == [
        ("warning", "ackDeadlineSeconds"),
        ("error", "deadLetterPolicy"),
    ]
    assert all(line["event"] == "pubsub.subscription_differs" for line in logs)
    assert logs[1]["name"] == ORDERS.name
    assert "delivered for ever" in logs[1]["consequence"]


def test_the_ack_deadline_is_read_from_a_subscriptions_configuration() -> None:
    assert ack_deadline_of({"ackDeadlineSeconds": 15}) == 15
    for broken in ({}, {"ackDeadlineSeconds": 0}, {"ackDeadlineSeconds": "15"}):
        with pytest.raises(ValueError, match="ackDeadlineSeconds"):
            ack_deadline_of(broken)
