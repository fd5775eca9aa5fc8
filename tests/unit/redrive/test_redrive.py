"""A redrive run on fakes: what it republishes where, what it acks and when, what it leaves."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from ecom_redrive import redrive as redrive_module
from ecom_redrive.redrive import HOLD_SECONDS, Outcome, Redrive
from ecom_redrive.selection import Selection
from ecom_shared.errors import PublishFailed
from ecom_shared.pubsub.client import FIRST_PUBLISHED, OutgoingMessage, ReceivedMessage
from ecom_shared.runtime.faults import CrashHook, CrashPoint
from tests.fakes import FakePublisher

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
TOPICS = {"orders-sub": "orders", "payments-sub": "payments"}
_ids = itertools.count(1)


class FakeDeadLetterSubscription:
    """Pub/Sub's view of one subscription: a message is handed out while not leased; ``extend``
    with seconds leases it (0 gives it back at once), ``ack`` removes it, and :meth:`lapse`
    ends every lease, as an ack deadline passing would. Each hand-out gets a new ack id."""

    name = "dead-letter-sub"

    def __init__(self, messages: Sequence[ReceivedMessage]) -> None:
        self.messages = {m.message_id: m for m in messages}
        self.leased: set[str] = set()
        self.ack_of: dict[str, str] = {}  # ack id -> message id
        self.fail_acks = 0
        self.pulled = 0

    async def pull_now(self, max_messages: int) -> list[ReceivedMessage]:
        ready = [m for i, m in self.messages.items() if i not in self.leased][:max_messages]
        out = []
        for message in ready:
            ack_id = f"ack-{next(_ids)}"
            self.ack_of[ack_id] = message.message_id
            self.leased.add(message.message_id)
            out.append(replace(message, ack_id=ack_id))
        self.pulled += len(out)
        return out

    async def ack(self, ack_ids: Sequence[str]) -> None:
        if self.fail_acks:
            self.fail_acks -= 1
            raise aiohttp.ClientConnectionError("ack lost")
        for ack_id in ack_ids:
            self.messages.pop(self.ack_of[ack_id], None)
            self.leased.discard(self.ack_of[ack_id])

    async def extend(self, ack_ids: Sequence[str], seconds: int) -> None:
        for ack_id in ack_ids:
            if seconds == 0:
                self.leased.discard(self.ack_of[ack_id])

    def lapse(self) -> None:
        self.leased.clear()


def refused(
    body: bytes,
    reason: str,
    source: str,
    *,
    age: timedelta = timedelta(minutes=5),
    attributes: dict[str, str] | None = None,
) -> ReceivedMessage:
    n = next(_ids)
    return ReceivedMessage(
        ack_id="",
        message_id=f"dl-{n}",
        publish_time=NOW - age,
        data=body,
        attributes={
            "error_reason": reason,
            "error_detail": "detail",
            "source_subscription": source,
            "source_message_id": f"src-{n}",
            "source_publish_time": (NOW - age).isoformat(),
            "original_attributes": json.dumps(attributes or {}),
        },
    )


async def topic_of(subscription: str) -> str | None:
    return TOPICS.get(subscription)


def run(
    sub: FakeDeadLetterSubscription,
    publisher: FakePublisher,
    selection: Selection,
    **options: object,
) -> Outcome:
    redrive = Redrive(sub, publisher, topic_of, selection, clock=lambda: NOW, **options)  # type: ignore[arg-type]
    return asyncio.run(redrive.run(asyncio.Event()))


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redrive_module, "QUIET_SECONDS", 0.05)
    monkeypatch.setattr(redrive_module, "EMPTY_PAUSE", 0.01)


def mixed() -> list[ReceivedMessage]:
    return [
        refused(b'{"o": 1}', "invalid_value", "orders-sub", attributes={"event_type": "order"}),
        refused(b'{"o": 2}', "invalid_value", "orders-sub"),
        refused(b'{"p": 3}', "invalid_value", "payments-sub", age=timedelta(hours=3)),
        refused(b"not json", "invalid_json", "orders-sub"),
        refused(b'{"x": 4}', "invalid_value", "gone-sub"),
    ]


def test_selected_letters_go_back_to_their_topic_and_the_rest_stay() -> None:
    sub, publisher = FakeDeadLetterSubscription(mixed()), FakePublisher()
    outcome = run(sub, publisher, Selection(reasons=frozenset({"invalid_value"})))

    def restored(messages: list[OutgoingMessage]) -> list[OutgoingMessage]:
        """Without the first publication time the redrive adds (tested in test_letters)."""
        return [
            OutgoingMessage(m.data, {k: v for k, v in m.attributes.items() if k != FIRST_PUBLISHED})
            for m in messages
        ]

    assert restored(publisher.on("orders")) == [
        OutgoingMessage(b'{"o": 1}', {"event_type": "order"}),
        OutgoingMessage(b'{"o": 2}', {}),
    ]
    assert restored(publisher.on("payments")) == [OutgoingMessage(b'{"p": 3}', {})]
    assert all(FIRST_PUBLISHED in m.attributes for _, m in publisher.sent)
    assert sorted(m.data or b"" for m in sub.messages.values()) == [b"not json", b'{"x": 4}']
    assert not sub.leased  # what stays is given back at the end, ready for the next run
    assert outcome.ok
    assert outcome.tally.totals() == {
        "waiting": 5,
        "selected": 3,
        "republished": 3,
        "acked": 3,
        "left": 2,
        "failed": 0,
        "not_redrivable": 1,
    }
    assert outcome.tally.not_redrivable == {"the topic of gone-sub is unknown": 1}


def test_a_dry_run_changes_nothing_and_counts_what_it_would_take() -> None:
    letters = mixed()
    sub, publisher = FakeDeadLetterSubscription(letters), FakePublisher()
    outcome = run(sub, publisher, Selection(sources=frozenset({"orders-sub"})), dry_run=True)
    assert publisher.sent == []
    assert set(sub.messages) == {m.message_id for m in letters}
    assert not sub.leased
    assert sub.pulled == len(letters)  # each handed out once: held while the run read on
    assert list(outcome.tally.groups()) == [
        (("invalid_json", "orders-sub", "<1h"), 1, 1, 0),
        (("invalid_value", "gone-sub", "<1h"), 1, 0, 0),
        (("invalid_value", "orders-sub", "<1h"), 2, 2, 0),
        (("invalid_value", "payments-sub", "1h-1d"), 1, 0, 0),
    ]


def test_the_limit_stops_the_run() -> None:
    sub, publisher = FakeDeadLetterSubscription(mixed()), FakePublisher()
    outcome = run(sub, publisher, Selection(limit=2))
    assert len(publisher.sent) == 2
    assert len(sub.messages) == 3
    assert not sub.leased
    assert outcome.tally.totals()["acked"] == 2


def test_a_failed_publish_acks_nothing_and_fails_the_run() -> None:
    sub, publisher = FakeDeadLetterSubscription(mixed()[:2]), FakePublisher(failures=1)
    publisher.error = PublishFailed("publish to orders failed: 503")
    outcome = run(sub, publisher, Selection(reasons=frozenset({"invalid_value"})))
    assert len(sub.messages) == 2
    assert not sub.leased
    assert not outcome.ok
    assert outcome.tally.totals()["failed"] == 2


def test_a_lost_ack_is_acked_again_when_handed_out_again_never_republished() -> None:
    sub, publisher = FakeDeadLetterSubscription(mixed()[:1]), FakePublisher()
    sub.fail_acks = 1

    async def lapsing_pull(max_messages: int) -> list[ReceivedMessage]:
        sub.lapse()  # every ack deadline has passed by the next pull
        return await FakeDeadLetterSubscription.pull_now(sub, max_messages)

    sub.pull_now = lapsing_pull  # type: ignore[method-assign]
    outcome = run(sub, publisher, Selection())
    assert len(publisher.sent) == 1
    assert sub.messages == {}
    assert outcome.ok
    assert outcome.tally.totals()["acked"] == 1


def test_a_crash_between_republish_and_ack_leaves_the_letters_for_the_next_run() -> None:
    sub, publisher = FakeDeadLetterSubscription(mixed()[:2]), FakePublisher()
    died: list[CrashPoint] = []

    def die(point: CrashPoint) -> None:
        died.append(point)
        raise SystemExit(137)

    crash = CrashHook(CrashPoint.AFTER_REPUBLISH_BEFORE_ACK, die=die)  # type: ignore[arg-type]
    with pytest.raises(SystemExit):
        run(sub, publisher, Selection(), crash=crash)
    assert died == [CrashPoint.AFTER_REPUBLISH_BEFORE_ACK]
    assert len(sub.messages) == 2  # republished, not acked: nothing is lost
    sub.lapse()
    again = run(sub, publisher, Selection())
    assert sub.messages == {}
    assert again.tally.totals()["acked"] == 2
    assert [m.data for _, m in publisher.sent] == [b'{"o": 1}', b'{"o": 2}'] * 2  # duplicates


def test_held_letters_are_given_back_with_deadline_zero() -> None:
    sub, publisher = FakeDeadLetterSubscription(mixed()[3:4]), FakePublisher()
    extended: list[tuple[list[str], int]] = []
    original = sub.extend

    async def recording(ack_ids: Sequence[str], seconds: int) -> None:
        extended.append((list(ack_ids), seconds))
        await original(ack_ids, seconds)

    sub.extend = recording  # type: ignore[method-assign]
    run(sub, publisher, Selection(reasons=frozenset({"invalid_value"})))
    assert [seconds for _, seconds in extended] == [HOLD_SECONDS, 0]
    assert extended[0][0] == extended[1][0]
