"""``ecom-verify`` as a command on fake tables and a fake dead-letter subscription: a tampered
row fails it, and so does a dead-letter subscription that lacks a malformed message or holds
one more."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

import ecom_verifier.verify as verify_module
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_verifier.checks import CATEGORIES, ParkedRow, Report, StoredRow
from ecom_verifier.dead_letters import (
    DEAD_LETTER_CATEGORIES,
    HOLD_SECONDS,
    DeadLetter,
    SubscriptionDeadLetters,
    judge_dead_letters,
)
from ecom_verifier.manifest import expected_state, malformed_record, with_message_id
from ecom_verifier.manifest_index import ManifestIndex
from ecom_verifier.verify import EXIT_USAGE
from ecom_verifier.verify import main as verify_main
from tests.fakes import received
from tests.unit.verifier.test_verify import (
    GOOD_PARKED,
    ORPHANED,
    FakeTables,
    good_rows,
    manifest_lines,
    order,
    parked,
    row,
)

# ecom-verify configures logging for the whole process: put it back after each test.
pytestmark = pytest.mark.usefixtures("restore_logging")

TOPICS = {"orders-sub": "orders", "payments-sub": "payments"}


def named_lines() -> list[str]:
    """The unit manifest as today's producer writes it: every line names its message; two
    malformed messages, one per topic (the orders one has id 501, the payments one 502)."""
    lines = [
        line for line in manifest_lines() if '"kind": "malformed"' not in line
    ]  # ids o1..: valid messages
    named = [with_message_id(line, f"o{n}") for n, line in enumerate(lines, start=1)]
    return [
        *named,
        with_message_id(malformed_record("orders", "invalid_json"), "501"),
        with_message_id(malformed_record("payments", "invalid_value"), "502"),
    ]


def letter(own: str, subscription: str, source: str, reason: str) -> DeadLetter:
    return DeadLetter(own, subscription, source, reason)


GOOD_LETTERS = [
    letter("d1", "orders-sub", "501", "invalid_json"),
    letter("d2", "payments-sub", "502", "invalid_value"),
    letter("d3", "orders-sub", "501", "invalid_json"),  # a copy: killed before its ack
    letter("d1", "orders-sub", "501", "invalid_json"),  # d1 handed out twice during the read
]


@pytest.fixture
def index() -> Iterator[ManifestIndex]:
    built = ManifestIndex.build(named_lines())
    yield built
    built.close()


def judged(index: ManifestIndex, letters: list[DeadLetter]) -> Report:
    report = Report()
    judge_dead_letters(letters, index, TOPICS, report)
    return report


def only(report: Report, **counts: int) -> None:
    expected = dict.fromkeys((*CATEGORIES, *DEAD_LETTER_CATEGORIES), 0) | counts
    assert report.counts == expected, report.examples


def test_every_malformed_message_there_once_with_its_reason_passes(index: ManifestIndex) -> None:
    report = judged(index, GOOD_LETTERS)
    only(report)
    assert report.observed["dead_letters_read"] == 3
    assert report.observed["dead_letter_copies"] == 1  # reported, not a failure
    assert report.totals["malformed_named"] == 2


def test_a_folded_state_knows_the_malformed_messages_too() -> None:
    """``verify`` also takes a small ExpectedState (the tests' and the demo's path)."""
    from_state = ManifestIndex.from_state(expected_state(named_lines()))
    try:
        assert list(from_state.malformed_messages()) == [
            ("orders", "501", "invalid_json"),
            ("payments", "502", "invalid_value"),
        ]
        only(judged(from_state, GOOD_LETTERS))
    finally:
        from_state.close()


def test_a_malformed_message_missing_fails(index: ManifestIndex) -> None:
    report = judged(index, [GOOD_LETTERS[0]])
    only(report, dead_letter_missing=1)
    assert report.examples["dead_letter_missing"] == ["payments message 502 (invalid_value)"]


def test_one_more_dead_letter_fails(index: ManifestIndex) -> None:
    healthy = letter("d9", "orders-sub", "o1", "invalid_value")  # a valid order dead-lettered
    report = judged(index, [*GOOD_LETTERS, healthy])
    only(report, dead_letter_unexplained=1)
    assert report.examples["dead_letter_unexplained"] == [
        "orders message o1 (invalid_value): not malformed in the manifest"
    ]


def test_another_reason_is_wrong(index: ManifestIndex) -> None:
    report = judged(index, [GOOD_LETTERS[0], letter("d2", "payments-sub", "502", "invalid_json")])
    only(report, dead_letter_wrong=1)
    assert report.examples["dead_letter_wrong"] == [
        "payments message 502: 'invalid_json' (manifest 'invalid_value')"
    ]


def test_the_subscription_tells_the_topic_of_the_id(index: ManifestIndex) -> None:
    """Message ids are unique within a topic only: 501 from the payments subscription is not
    the orders message 501."""
    report = judged(index, [letter("d1", "payments-sub", "501", "invalid_json"), GOOD_LETTERS[1]])
    only(report, dead_letter_unexplained=1, dead_letter_missing=1)
    assert report.examples["dead_letter_missing"] == ["orders message 501 (invalid_json)"]


def test_a_forwarded_or_foreign_dead_letter_is_unexplained(index: ManifestIndex) -> None:
    forwarded = DeadLetter.from_attributes(
        "d7",
        {
            "CloudPubSubDeadLetterSourceSubscription": "orders-sub",
            "CloudPubSubDeadLetterSourceDeliveryCount": "20",
        },
    )
    foreign = letter("d8", "someone-else-sub", "900", "invalid_json")
    report = judged(index, [*GOOD_LETTERS, forwarded, foreign])
    only(report, dead_letter_unexplained=2)
    assert report.examples["dead_letter_unexplained"] == [
        "dead letter d7: forwarded by the dead-letter policy of orders-sub after 20 deliveries",
        "message 900 of subscription 'someone-else-sub', which is not a consumer's",
    ]


class PeekableSubscription:
    """A dead-letter subscription with leases: a pull hands out what nobody holds, in pages."""

    name = "dead-letter-check"

    def __init__(self, messages: Sequence[ReceivedMessage], page: int = 2) -> None:
        self.messages = list(messages)
        self.page = page
        self.held: set[str] = set()
        self.deadlines: list[tuple[tuple[str, ...], int]] = []
        self.empty_answers = 1  # the first pull answers empty although messages wait

    async def pull_now(self, max_messages: int) -> list[ReceivedMessage]:
        if self.empty_answers:
            self.empty_answers -= 1
            return []
        free = [m for m in self.messages if m.ack_id not in self.held]
        batch = free[: min(max_messages, self.page)]
        self.held.update(m.ack_id for m in batch)
        return batch

    async def extend(self, ack_ids: Sequence[str], seconds: int) -> None:
        self.deadlines.append((tuple(ack_ids), seconds))
        if seconds == 0:
            self.held.difference_update(ack_ids)


def dead_letter_messages(letters: list[DeadLetter]) -> list[ReceivedMessage]:
    """The letters as pulled messages (their own ids are the fakes' msg-N)."""
    return [
        received(
            b"payload",
            {
                "error_reason": x.reason or "",
                "source_subscription": x.source_subscription or "",
                "source_message_id": x.source_message_id or "",
            },
        )
        for x in letters
    ]


async def test_reading_holds_every_message_then_gives_all_back() -> None:
    messages = dead_letter_messages(GOOD_LETTERS[:3])
    subscription = PeekableSubscription(messages)
    letters = await SubscriptionDeadLetters(subscription).read()
    assert [x.source_message_id for x in letters] == ["501", "502", "501"]
    assert subscription.held == set()  # nothing acked, nothing kept: all there for the next
    holds = [ids for ids, seconds in subscription.deadlines if seconds == HOLD_SECONDS]
    assert holds == [(messages[0].ack_id, messages[1].ack_id), (messages[2].ack_id,)]
    assert subscription.deadlines[-1] == (tuple(m.ack_id for m in messages), 0)
    again = await SubscriptionDeadLetters(subscription).read()
    assert len(again) == 3


# ``ecom-verify`` itself, with the tables and the subscription faked where it reaches out.


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Fakes for what ``ecom-verify`` reaches; the signal handlers it changes are restored."""
    world: dict[str, Any] = {"rows": good_rows(), "parked": GOOD_PARKED, "letters": []}

    @contextlib.asynccontextmanager
    async def nothing(*_: object) -> AsyncIterator[None]:
        yield None

    monkeypatch.setattr(verify_module, "cassandra_session", nothing)
    monkeypatch.setattr(verify_module, "http_session", nothing)
    monkeypatch.setattr(
        verify_module, "CassandraTables", lambda *_: FakeTables(world["rows"], world["parked"])
    )
    monkeypatch.setattr(
        verify_module,
        "PubSubSubscription",
        lambda *_: PeekableSubscription(dead_letter_messages(world["letters"])),
    )
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield world
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def run_verify(
    tmp_path: Path, lines: list[str], capsys: pytest.CaptureFixture[str], *flags: str
) -> tuple[int, str]:
    manifest = tmp_path / "run.jsonl"
    manifest.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    code = verify_main(["--manifest", str(manifest), *flags])
    return code, capsys.readouterr().out


def test_ecom_verify_fails_on_a_tampered_order_status_or_parked_row(
    command: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = manifest_lines()
    assert run_verify(tmp_path, lines, capsys)[0] == 0
    rows: list[StoredRow] = good_rows()
    rows[2] = row(order(1003, "Delivered"), None)  # the status of one order changed
    command["rows"] = rows
    code, out = run_verify(tmp_path, lines, capsys)
    assert code == 1
    assert "first orders_wrong: 1003: order_status 'Delivered' (manifest 'Pending')" in out
    command["rows"] = good_rows()
    tampered: list[ParkedRow] = [parked(ORPHANED | {"payment_status": "Refunded"})]
    command["parked"] = tampered
    code, out = run_verify(tmp_path, lines, capsys)
    assert code == 1
    assert "payment_status 'Refunded' (manifest 'Completed')" in out


def test_ecom_verify_checks_the_dead_letter_subscription_when_asked(
    command: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ("--dead-letter-subscription", "dead-letter-check")
    lines = named_lines()
    command["letters"] = GOOD_LETTERS[:3]
    code, out = run_verify(tmp_path, lines, capsys, *flags)
    assert code == 0, out
    assert "dead_letter_copies         1" in out
    command["letters"] = GOOD_LETTERS[:1]  # the payments one is missing
    code, out = run_verify(tmp_path, lines, capsys, *flags)
    assert code == 1
    assert "first dead_letter_missing: payments message 502 (invalid_value)" in out
    command["letters"] = [*GOOD_LETTERS[:3], letter("d9", "orders-sub", "777", "empty_body")]
    code, out = run_verify(tmp_path, lines, capsys, *flags)
    assert code == 1
    assert "dead_letter_unexplained    1" in out
    assert run_verify(tmp_path, lines, capsys)[0] == 0  # not asked: not checked


def test_a_manifest_without_message_ids_cannot_have_its_dead_letters_checked(
    command: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "old.jsonl"
    manifest.write_text("".join(line + "\n" for line in manifest_lines()), encoding="utf-8")
    flags = ["--manifest", str(manifest), "--dead-letter-subscription", "dead-letter-check"]
    assert verify_main(flags) == EXIT_USAGE
    assert "1 malformed records without a message_id" in capsys.readouterr().err


def test_a_subscription_that_cannot_be_read_is_exit_code_2(
    command: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Missing(PeekableSubscription):
        async def pull_now(self, max_messages: int) -> list[ReceivedMessage]:
            raise aiohttp.ClientResponseError(
                aiohttp.RequestInfo(URL("http://x/pull"), "POST", CIMultiDictProxy(CIMultiDict())),
                (),
                status=404,
                message="Not Found",
            )

    monkeypatch.setattr(verify_module, "PubSubSubscription", lambda *_: Missing([]))
    manifest = tmp_path / "run.jsonl"
    manifest.write_text("".join(line + "\n" for line in named_lines()), encoding="utf-8")
    flags = ["--manifest", str(manifest), "--dead-letter-subscription", "nope"]
    assert verify_main(flags) == EXIT_USAGE
    assert "cannot read subscription nope: 404 Not Found" in capsys.readouterr().err
