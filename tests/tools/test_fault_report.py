"""The fault suite's accounting: how verifier categories and dead letters become the table's
lost, wrong and duplicated figures (``tests/faults/report.py``, ``tests/faults/pubsub.py``)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ecom_devtools.local.drain import Pulled
from ecom_shared.settings import PubSubSettings
from ecom_verifier.manifest import malformed_record
from tests.faults import report as reports
from tests.faults.copies import Copies, count_copies, publish_time, unannounced
from tests.faults.pubsub import check_dead_letters, expected_dead_letters, source_id
from tests.faults.report import REPORT_ENV, DeadLetterCheck, emit, fold
from tests.faults.services import Life

PUBSUB = PubSubSettings()
CLEAN = DeadLetterCheck(expected={}, got={}, copies=0)


def dead(source: str, reason: str, subscription: str = PUBSUB.orders_subscription) -> Pulled:
    attributes = {"error_reason": reason, "source_subscription": subscription}
    return Pulled(f"dl-{source}", b"{", {**attributes, "source_message_id": source})


def test_verifier_categories_fold_into_lost_wrong_and_duplicated() -> None:
    counts = {
        "orders_missing": 1,
        "payments_missing": 2,
        "parked_missing": 4,
        "orders_wrong": 8,
        "payments_wrong": 16,
        "rows_unexplained": 32,
        "payments_unexplained": 64,
        "parked_but_order_exists": 128,
        "a_category_added_later": 256,
    }
    report = fold("s", counts, CLEAN, events=10, faults=1, seconds=1.0)
    assert (report.lost, report.wrong, report.duplicated) == (7, 8 + 16 + 256, 32 + 64 + 128)
    assert not report.ok


def test_dead_letters_must_match_the_manifest_once_per_source_message() -> None:
    manifest = [
        malformed_record("orders", "invalid_json"),
        malformed_record("orders", "invalid_json"),
        malformed_record("payments", "empty_body"),
    ]
    expected = expected_dead_letters(manifest)
    assert expected == Counter({"orders/invalid_json": 2, "payments/empty_body": 1})
    got = [
        dead("a", "invalid_json"),
        dead("a", "invalid_json"),  # the same message dead-lettered twice: a copy
        dead("b", "missing_field"),  # not what the manifest says
        dead("c", "empty_body", PUBSUB.payments_subscription),
    ]
    check = check_dead_letters(got, expected, PUBSUB)
    assert (check.missing, check.unexpected, check.copies) == (1, 1, 1)
    report = fold("s", {}, check, events=3, faults=0, seconds=0.0)
    assert (report.lost, report.wrong, report.duplicated) == (1, 1, 0)


def test_a_message_forwarded_by_the_subscription_policy_is_unexpected() -> None:
    forwarded = Pulled("x", b"{}", {"CloudPubSubDeadLetterSourceSubscription": "orders-sub"})
    check = check_dead_letters([forwarded], Counter(), PUBSUB)
    assert check.got == {"orders/policy": 1}
    assert check.unexpected == 1


def test_each_report_is_one_json_line_appended_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "reports.jsonl"
    monkeypatch.setenv(REPORT_ENV, str(target))
    monkeypatch.setattr(reports, "EMITTED", [])  # keep these out of the run's summary table
    report = fold("s", {"orders_missing": 0}, CLEAN, events=5, faults=2, seconds=1.5)
    assert emit(report, tmp_path / "unused.jsonl") == target
    emit(report, tmp_path / "unused.jsonl")
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["events"] == 5
    assert capsys.readouterr().out.startswith("FAULT-REPORT {")


def published(source: str, at: float) -> Pulled:
    moment = datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds")
    stamp = moment.replace("+00:00", "123Z")  # as Pub/Sub writes it: nanoseconds, Z
    return Pulled(f"m-{source}-{at}", b"{}", {"source_message_id": source}, stamp)


def test_a_copy_counts_only_when_a_killed_run_explains_it() -> None:
    killed = Life("payment-consumer", started=100.0, ended=110.0, killed=True)
    stopped = Life("payment-consumer", started=110.0, ended=200.0, killed=False)
    other_kind = Life("order-consumer", started=100.0, ended=150.0, killed=True)
    messages = [
        published("once", 105.0),
        published("redelivered", 105.0),  # published by the killed run, then again after
        published("redelivered", 120.0),
        published("twice-alive", 130.0),  # both while nothing of its kind died
        published("twice-alive", 131.0),
    ]

    def count(lives: list[Life]) -> Copies:
        return count_copies(
            messages, lives, source_of=source_id, handler_of=lambda m: "payment-consumer"
        )

    assert count([killed, stopped, other_kind]) == Copies(3, 2, ("twice-alive",))
    # Without the kill, the redelivered copy is unexplained too; a kill of another kind of
    # service explains nothing.
    assert count([stopped, other_kind]).unexplained == ("redelivered", "twice-alive")


def test_publish_times_are_read_to_the_microsecond() -> None:
    assert publish_time(published("x", 1_700_000_000.25)) == 1_700_000_000.25


def test_every_orphan_payment_message_must_be_announced() -> None:
    announcements = [published("a", 1.0), published("b", 2.0)]
    assert unannounced(announcements, ["a", "b"]) == 0
    assert unannounced(announcements, ["a", "c", "d"]) == 2
    report = fold(
        "s",
        {},
        CLEAN,
        unannounced=2,
        unexplained_copies=1,
        out_of_scope=3,
        events=1,
        faults=0,
        seconds=0.0,
    )
    assert (report.lost, report.duplicated) == (2, 4)
    assert not report.ok
