"""The producer's planned stream and the manifest's expected state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecom_producer.stream import StreamOptions, StreamPlanner
from ecom_producer.verify import EXIT_USAGE
from ecom_producer.verify import main as verify_main
from ecom_shared.events import EventType, Order, Payment, parse_event
from ecom_shared.manifest import expected_state


def test_same_seed_same_stream() -> None:
    a = StreamPlanner(StreamOptions(seed=7)).chunk(200)
    b = StreamPlanner(StreamOptions(seed=7)).chunk(200)
    assert [p.data for p in a.early + a.main + a.late] == [
        p.data for p in b.early + b.main + b.late
    ]


def test_shares_shape_the_stream() -> None:
    options = StreamOptions(
        seed=3,
        payments_first=0.3,
        no_payment=0.1,
        reemits=0.2,
        duplicates=0.05,
        malformed=0.02,
        orphan_payments=0.05,
    )
    chunk = StreamPlanner(options).chunk(2000)
    kinds = [json.loads(p.record) for p in chunk.early + chunk.main + chunk.late]
    orders_main = [p for p in chunk.main if p.topic_kind is EventType.ORDER]
    early_payments = [p for p in chunk.early if p.topic_kind is EventType.PAYMENT]
    assert len(orders_main) == 2000
    assert 0.25 < len(early_payments) / 2000 / 0.9 < 0.35  # ~30 % of the ~90 % that pay
    assert 0.03 < sum(k.get("duplicate", False) for k in kinds) / len(kinds) < 0.07
    assert 0.01 < sum(k["kind"] == "malformed" for k in kinds) / len(kinds) < 0.03
    assert 60 < sum(k.get("orphan", False) for k in kinds) < 140


def test_every_valid_planned_message_validates() -> None:
    chunk = StreamPlanner(StreamOptions(seed=5)).chunk(300)
    for planned in chunk.early + chunk.main + chunk.late:
        if json.loads(planned.record)["kind"] == "malformed":
            continue
        if planned.topic_kind is EventType.ORDER:
            parse_event(Order, planned.data, planned.attributes)
        else:
            parse_event(Payment, planned.data, planned.attributes)


def test_expected_state_takes_newest_versions_and_parks_orphans() -> None:
    chunk = StreamPlanner(
        StreamOptions(seed=11, reemits=1.0, orphan_payments=0.1, second_payments=0.5)
    ).chunk(100)
    lines = [p.record for p in chunk.early + chunk.main + chunk.late]
    state = expected_state(lines)
    assert len(state.orders) == 100
    # Every order was re-emitted with a later updated_at, and that version is expected.
    assert all(o.updated_at != o.creation_date for o in state.orders.values())
    assert len(state.parked) >= 5
    assert all(order_id not in state.orders for order_id, _ in state.parked)
    assert all(p.order_id in state.orders for p in state.payments.values())


def test_verify_refuses_a_missing_or_empty_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    assert verify_main(["--manifest", str(missing)]) == EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert verify_main(["--manifest", str(empty)]) == EXIT_USAGE
    assert "holds no records" in capsys.readouterr().err
