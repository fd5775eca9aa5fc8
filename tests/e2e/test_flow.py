"""The four services as processes, as a user runs them, on a stream with every complication."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pytest

from ecom_verifier.manifest import ExpectedState, load_expected, read_records
from tests.apps_tables import Expected, Row, compare_orders, compare_parked, payment_cells
from tests.e2e.demo_run import DEMO_BUDGET_SECONDS, ORDERS, ReadBack, cassandra_env, run
from tests.infra import InfraUnderTest

pytestmark = pytest.mark.timeout(DEMO_BUDGET_SECONDS + 60)
JOIN_PATHS: Final = {
    "stream": "payments joined on the stream",
    "order": "payments joined as their order came",
    "dlq": "payments reconciled by the DLQ worker",
}
"""Each ``payment_source`` and the demo summary's row that counts it."""


def test_the_stream_had_every_complication(demo: dict[str, Any]) -> None:
    manifest = Path(demo["summary"]["manifest"])
    records = list(read_records(manifest.read_text(encoding="utf-8").splitlines()))
    expected = load_expected(manifest)
    versions: dict[int, int] = {}
    for record in records:
        if record["kind"] == "order":
            order_id = record["event"]["order_id"]
            versions[order_id] = versions.get(order_id, 0) + 1
    assert len(expected.orders) == ORDERS
    assert expected.duplicates > 0
    assert expected.parked  # orphans: payments whose order never came
    assert sum(expected.malformed.values()) > 0
    assert sum(1 for n in versions.values() if n > 1) > ORDERS * 0.05  # re-emitted orders
    assert len(expected.payments) < ORDERS  # some orders never got a payment


def differences(
    expected: Expected, rows: dict[int, Row], parked: dict[tuple[int, int], Row]
) -> list[str]:
    """Every difference of the two tables from what the manifest says."""
    return compare_orders(expected, rows) + compare_parked(expected, parked)


def join_paths(rows: dict[int, Row]) -> Counter[str]:
    """Joined payments by the ``payment_source`` of their row."""
    return Counter(r["payment_source"] for r in rows.values() if r["payment_id"] is not None)


def worker_joins(log: Path) -> int:
    """The payments the DLQ worker joined, summed over its passes' ``dlq.pass_done`` lines."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return sum(json.loads(line)["reconciled"] for line in lines if '"dlq.pass_done"' in line)


async def test_tables_equal_what_the_manifest_says(
    demo: dict[str, Any], read_back: ReadBack
) -> None:
    """Every value as sent last, the winning payment in each row, orphans parked; every
    payment joined, and each row's join path explained (30 % of payments went out before their
    order: whether one was parked first, and so which path joined it, depends on timing)."""
    expected, rows = read_back.expected, read_back.rows
    found = differences(expected, rows, read_back.parked)
    assert found == [], f"{len(found)} differences, e.g. {found[:20]}"
    assert len(rows) == len(expected.orders) == ORDERS
    assert len(read_back.parked) == len(expected.parked) > 0
    paths = join_paths(rows)
    print(f"\njoined payments by payment_source: {dict(paths)}")
    assert sum(paths.values()) == len(expected.payments)
    # Which path joins a payment sent before its order is a race: the payment consumer looks
    # for the order again after parking, the order consumer looks for parked payments after
    # writing, and the DLQ worker is the safety net. When the consumers keep pace with the
    # producer, the payment consumer's second look can win every race, and the rows show no
    # "order" or "dlq" at all. So here only the stream's path is required; the order
    # consumer's join is proven where its order is fixed (tests/integration/test_pipeline.py)
    # and the worker's by the fault suite's crash scenario. A row keeps "dlq" only when the
    # worker alone wrote that payment (at one version's tie Cassandra keeps the larger text),
    # so the worker's own log must count at least those rows.
    assert paths["stream"] >= 1, f"no payment was joined on the stream: {paths}"
    by_worker = worker_joins(Path(demo["summary"]["manifest"]).parent / "logs" / "dlq-worker.log")
    print(f"joined by the DLQ worker, by its own log: {by_worker}")
    assert by_worker >= paths["dlq"], f"the DLQ worker joined {by_worker}: {paths}"
    # The demo read its summary once the tables matched, with the services still running. A
    # payment's duplicate handled after that is joined on the stream again: its row takes
    # "stream" (a later publish is a newer version, and at one version's tie Cassandra keeps
    # the larger value), so since the summary, rows can only have moved from the other paths.
    shown = {source: demo["summary"]["rows"][row] for source, row in JOIN_PATHS.items()}
    assert sum(shown.values()) == sum(paths.values()), (shown, paths)
    moved = shown["order"] - paths["order"], shown["dlq"] - paths["dlq"]
    assert min(moved) >= 0, f"the demo showed {shown}, the table holds {paths}"


def test_the_comparison_catches_wrong_tables(read_back: ReadBack) -> None:
    """A copy of the tables read with one price changed, one payment missing and one payment
    parked that was joined: each is reported, and as what it is."""
    expected, rows, parked = read_back.expected, read_back.rows, read_back.parked
    order_id, payment = next(iter(expected.payments.items()))
    row = rows[order_id]
    cents_more = str(Decimal(row["price"]) + Decimal("0.01"))
    unpaid = dict.fromkeys((*payment_cells(payment), "payment_source"))
    key = (order_id, payment.value["payment_id"])
    wrong = {
        f"order {order_id} price: ": ({**rows, order_id: {**row, "price": cents_more}}, parked),
        f"order {order_id} payment payment_id: ": ({**rows, order_id: {**row, **unpaid}}, parked),
        f"parked {key}: never expected": (rows, {**parked, key: payment_cells(payment)}),
    }
    for report, (altered_rows, altered_parked) in wrong.items():
        found = differences(expected, altered_rows, altered_parked)
        assert any(line.startswith(report) for line in found), f"not caught: {report}: {found}"


async def test_the_summary_counts_are_right(demo: dict[str, Any]) -> None:
    summary = demo["summary"]
    expected: ExpectedState = load_expected(Path(summary["manifest"]))
    rows = summary["rows"]
    assert rows["orders stored"] == len(expected.orders)
    assert rows["payments joined in all"] == len(expected.payments)
    assert rows["payments still waiting (order never came)"] == len(expected.parked)
    assert rows["messages dead-lettered"] == sum(expected.malformed.values())
    assert summary["dead_letter_reasons"] == expected.malformed
    assert rows["payments parked (announced on dlq-payments)"] >= (
        rows["payments joined as their order came"] + rows["payments reconciled by the DLQ worker"]
    )
    assert set(summary["exit_codes"].values()) == {0}


async def test_dlq_worker_once_reports_what_still_waits(
    demo: dict[str, Any], infra: InfraUnderTest
) -> None:
    expected = load_expected(Path(demo["summary"]["manifest"]))
    env = {**os.environ, **cassandra_env(infra), "ECOM_WORKER__MAX_AGE_SECONDS": "0.001"}
    code, output = await run([sys.executable, "-m", "ecom_dlq_worker", "--once"], env, 120)
    assert code == 0, output
    [line] = [json.loads(x) for x in output.splitlines() if '"dlq.pass_done"' in x]
    assert line["waiting"] == len(expected.parked)
    assert line["reconciled"] == 0
    assert line["stale"] == line["waiting"]  # all older than the 1 ms age given
    assert len(line["stale_ids"]) == min(line["stale"], 20)


async def test_the_verify_command_passes_with_the_manifests_totals(
    demo: dict[str, Any], infra: InfraUnderTest, tmp_path: Path
) -> None:
    """``ecom-verify`` as a user runs it: the on-disk index, token scans, the JSON report."""
    manifest = Path(demo["summary"]["manifest"])
    expected = load_expected(manifest)
    env = {**os.environ, **cassandra_env(infra)}
    argv = [sys.executable, "-m", "ecom_verifier.verify", "--manifest", str(manifest), "--json"]
    code, output = await run([*argv, "--index-dir", str(tmp_path)], env, 300)
    assert code == 0, output
    [line] = [x for x in output.splitlines() if x.startswith('{"ok"') and '"counts"' in x]
    report = json.loads(line)
    assert report["ok"] is True
    assert set(report["counts"].values()) == {0}
    assert report["totals"]["orders"] == len(expected.orders)
    assert report["totals"]["payments_joined"] == len(expected.payments)
    assert report["totals"]["payments_parked"] == len(expected.parked)
    assert report["totals"]["malformed"] == sum(expected.malformed.values())
    assert report["observed"]["still_parked"] == len(expected.parked)
    assert report["peak_rss_bytes"] > 0
    assert await asyncio.to_thread(os.listdir, tmp_path) == []  # the scratch index is gone
