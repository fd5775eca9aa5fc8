"""Selection by reason, source and age; the counts grouped by reason, source and age bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecom_redrive.letters import DeadLetter
from ecom_redrive.selection import Selection, Tally, age_bucket, parse_duration
from ecom_shared.pubsub.client import OutgoingMessage

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def letter(
    reason: str = "invalid_value", source: str = "orders-sub", age: str = "5m"
) -> DeadLetter:
    return DeadLetter(
        ack_id="a",
        message_id="m",
        reason=reason,
        source=source,
        dead_lettered_at=NOW - parse_duration(age),
        restored=OutgoingMessage(b"{}"),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        (" 1h ", timedelta(hours=1)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "1.5h", "-1h", "1w", "1h30m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("age", "bucket"),
    [
        ("0s", "<1h"),
        ("59m", "<1h"),
        ("1h", "1h-1d"),
        ("1d", "1d-7d"),
        ("7d", ">=7d"),
        ("30d", ">=7d"),
    ],
)
def test_age_buckets(age: str, bucket: str) -> None:
    assert age_bucket(parse_duration(age)) == bucket


def test_no_criterion_takes_every_restorable_letter() -> None:
    everything = Selection()
    assert everything.is_everything
    assert everything.matches(letter(), NOW)
    unrestorable = DeadLetter("a", "m", "empty_body", "orders-sub", NOW, None, "it is empty")
    assert not everything.matches(unrestorable, NOW)


def test_every_criterion_must_hold() -> None:
    chosen = Selection(
        reasons=frozenset({"invalid_value", "missing_field"}),
        sources=frozenset({"orders-sub"}),
        older_than=timedelta(minutes=1),
        newer_than=timedelta(hours=1),
    )
    assert not chosen.is_everything
    assert chosen.matches(letter(), NOW)
    assert chosen.matches(letter(reason="missing_field", age="59m"), NOW)
    assert not chosen.matches(letter(reason="invalid_json"), NOW)
    assert not chosen.matches(letter(source="payments-sub"), NOW)
    assert not chosen.matches(letter(age="30s"), NOW)  # too new
    assert not chosen.matches(letter(age="1h"), NOW)  # too old


def test_the_tally_groups_by_reason_source_and_age() -> None:
    tally = Tally()
    for one in (letter(), letter(), letter(age="2h"), letter(source="payments-sub")):
        tally.saw(one, NOW)
    tally.saw(DeadLetter("a", "m", "empty_body", "orders-sub", NOW, None, "it is empty"), NOW)
    assert list(tally.groups()) == [
        (("empty_body", "orders-sub", "<1h"), 1, 0, 0),
        (("invalid_value", "orders-sub", "1h-1d"), 1, 0, 0),
        (("invalid_value", "orders-sub", "<1h"), 2, 0, 0),
        (("invalid_value", "payments-sub", "<1h"), 1, 0, 0),
    ]
    assert tally.totals() == {
        "waiting": 5,
        "selected": 0,
        "republished": 0,
        "acked": 0,
        "left": 5,
        "failed": 0,
        "not_redrivable": 1,
    }
