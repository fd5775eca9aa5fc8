"""The four services as processes, as a user runs them, on a stream with every complication."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from ecom_devtools.demo import joined
from ecom_producer.verify import verify
from ecom_shared.cassandra import cassandra_session
from ecom_shared.manifest import ExpectedState, load_expected, read_records
from ecom_shared.settings import CassandraSettings
from tests.infra import InfraUnderTest

ORDERS = 3000
# The demo run, with Cassandra's start when this module runs first, gets DEMO_BUDGET_SECONDS; the
# per-test limit (the first test pays for the module fixture) must be above it, or the global
# 300 s of pyproject.toml cuts the run short before its own timeout can report it.
DEMO_BUDGET_SECONDS = 600
pytestmark = pytest.mark.timeout(DEMO_BUDGET_SECONDS + 60)


async def run(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


@pytest.fixture(scope="module")
async def demo(infra: InfraUnderTest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the quick-start command against the test infrastructure."""
    summary = tmp_path_factory.mktemp("demo") / "summary.json"
    code, output = await run(
        [
            sys.executable,
            "-m",
            "ecom_devtools.demo",
            "--orders",
            str(ORDERS),
            "--seed",
            "7",
            "--dir",
            str(infra.base_dir),
            "--cql-port",
            str(infra.cql_port),
            "--storage-port",
            str(infra.storage_port),
            "--jmx-port",
            str(infra.jmx_port),
            "--pubsub-port",
            str(infra.pubsub_port),
            "--json",
            str(summary),
        ],
        dict(os.environ),
        timeout=DEMO_BUDGET_SECONDS,
    )
    assert code == 0, output
    assert "PASSED" in output
    return {"summary": json.loads(summary.read_text()), "output": output}


def cassandra(infra: InfraUnderTest) -> CassandraSettings:
    return CassandraSettings(contact_points=["127.0.0.1"], port=infra.cql_port)


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


async def test_tables_equal_what_the_manifest_says(
    demo: dict[str, Any], infra: InfraUnderTest
) -> None:
    expected = load_expected(Path(demo["summary"]["manifest"]))
    async with cassandra_session(cassandra(infra)) as session:
        report = await verify(session, cassandra(infra), expected)
    assert report.ok, report.examples
    assert report.observed["orders_stored"] == len(expected.orders)
    assert joined(report.observed) == len(expected.payments)
    assert report.observed["still_parked"] == len(expected.parked)
    # 30 % of payments went out before their order; whether one was parked first, and so by
    # which path it was joined, depends on timing: the tables must be right either way.


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
    env = {
        **os.environ,
        "ECOM_CASSANDRA__PORT": str(infra.cql_port),
        "ECOM_CASSANDRA__CONTACT_POINTS": '["127.0.0.1"]',
        "ECOM_WORKER__MAX_AGE_SECONDS": "0.001",
    }
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
    env = {
        **os.environ,
        "ECOM_CASSANDRA__PORT": str(infra.cql_port),
        "ECOM_CASSANDRA__CONTACT_POINTS": '["127.0.0.1"]',
    }
    argv = [sys.executable, "-m", "ecom_producer.verify", "--manifest", str(manifest), "--json"]
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
