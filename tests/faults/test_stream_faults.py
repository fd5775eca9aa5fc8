"""Faults in the stream itself, and many services at once (issue 5, scenarios 1 and 6).

Each scenario publishes a few thousand events through ``ecom-producer``, waits until the
system is quiet, and ends with the verifier passing and the dead-letter subscription holding
exactly the malformed messages the manifest lists.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_verifier.manifest import read_records
from tests.faults.harness import Scenario
from tests.faults.report import FaultReport
from tests.infra import InfraUnderTest

# Generous: each scenario waits on its own deadlines, and this machine's 2 cores are shared.
pytestmark = pytest.mark.timeout(600)


def stream_faults(manifest: Path) -> dict[str, int]:
    """What the published stream itself did to the pipeline, counted from the manifest (which
    is in publish order): duplicates, payments before their order, orders re-emitted with new
    fields, and older versions published again after a newer one (by the apps' rule, the
    version published last wins, so those must win)."""
    latest: dict[int, object] = {}  # order id -> the body published last
    faults = {
        "duplicate": 0,
        "payment before its order": 0,
        "order re-emitted": 0,
        "older version again": 0,
    }
    for record in read_records(manifest.read_text(encoding="utf-8").splitlines()):
        event = record.get("event", {})
        if record["kind"] == "payment" and not record.get("duplicate"):
            faults["payment before its order"] += (
                not record.get("orphan") and event["order_id"] not in latest
            )
        elif record["kind"] == "order":
            previous = latest.get(event["order_id"])
            if record.get("duplicate"):
                faults["older version again"] += previous is not None and previous != event
            elif previous is not None:
                faults["order re-emitted"] += 1
            latest[event["order_id"]] = event
        faults["duplicate"] += bool(record.get("duplicate"))
    return faults


def assert_clean(report: FaultReport) -> None:
    assert report.ok, report
    # Nothing died: no message may have been dead-lettered or announced twice.
    assert report.dead_letter_copies == report.announcement_copies == 0, report
    assert report.announced > 0, report  # payments were parked, and announced
    assert sum(report.dead_letter_expected.values()) > 0  # bad input was part of the stream
    # Each service ran once and stopped cleanly (the harness starts none of its own).
    assert all(codes == [0] for codes in report.exit_codes.values()), report.exit_codes


async def test_duplicates_payments_first_and_reordered_versions(
    infra: InfraUnderTest, tmp_path: Path
) -> None:
    async with Scenario(infra, "1 duplicates+payments first+reorder", tmp_path) as s:
        s.start("order-consumer")
        s.start("payment-consumer")
        s.start("dlq-worker")
        code = await s.produce(
            1400,
            seed=101,
            payments_first=0.6,
            duplicates=0.3,
            reemits=0.6,
            second_payments=0.1,
            malformed=0.02,
        )
        assert code == 0
        injected = stream_faults(s.manifest)
        for kind, count in injected.items():
            s.fault(kind, count)
        report = await s.finish()
    assert_clean(report)
    # Each kind of disorder really happened, in numbers.
    assert min(injected.values()) >= 50, injected


async def test_three_order_and_payment_consumers_and_two_dlq_workers(
    infra: InfraUnderTest, tmp_path: Path
) -> None:
    async with Scenario(infra, "6 3+3 consumers, 2 DLQ workers", tmp_path) as s:
        orders = s.start("order-consumer", 3)
        payments = s.start("payment-consumer", 3)
        s.start("dlq-worker", 2)
        s.fault("extra instance", 2 + 2 + 1)  # beyond one of each
        await s.started()
        code = await s.produce(1500, seed=606, rate=1500, payments_first=0.4)
        assert code == 0
        report = await s.finish()
    assert_clean(report)
    # The work really was shared: every consumer handled messages.
    for consumer in orders + payments:
        [stopped] = consumer.events("consumer.stopped")
        assert stopped["acked"] > 0, consumer.name
