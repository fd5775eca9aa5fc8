"""``ecom-bench --smoke`` as CI runs it: a real Cassandra and emulator on the test's own ports.

The numbers of a smoke run are too small to mean anything about speed, so nothing here
asserts a timing. What is checked is that every section is there and that the figures are
positive and agree with each other: counts equal what was published, rates equal count over
seconds, ratios equal figure over ceiling, percentiles are ordered.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import ports

# The smoke run starts a second Cassandra and emulator of its own next to the session's; on a
# loaded 2-core machine that start alone can take minutes. The run gets SMOKE_BUDGET_SECONDS, and
# the per-test limit (which the first test pays, as it builds the module fixture) leaves room
# above it for the bench to stop its processes, so that the run's own timeout, with its output,
# is what reports a slow run rather than pytest-timeout.
SMOKE_BUDGET_SECONDS = 900
pytestmark = [pytest.mark.integration, pytest.mark.timeout(SMOKE_BUDGET_SECONDS + 120)]

PORTS = {
    "cql": ports.BENCH_CQL,
    "storage": ports.BENCH_STORAGE,
    "jmx": ports.BENCH_JMX,
    "pubsub": ports.BENCH_PUBSUB,
}
SECTIONS = (
    "machine",
    "ceilings",
    "order_drain",
    "payment_drain",
    "dlq_pass",
    "tombstones",
    "e2e",
    "memory",
    "scale_out",
    "verifier",
    "report",
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    base = tmp_path_factory.mktemp("bench")
    out = base / "results"
    argv = [
        sys.executable, "-m", "ecom_devtools.bench.cli", "--smoke", "--dir", str(base),
        "--out", str(out), "--cql-port", str(PORTS["cql"]),
        "--storage-port", str(PORTS["storage"]), "--jmx-port", str(PORTS["jmx"]),
        "--pubsub-port", str(PORTS["pubsub"]),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"}
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=SMOKE_BUDGET_SECONDS, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), out


def _close(a: float, b: float, tolerance: float = 0.02) -> bool:
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=0.01)


def _check_drain(section: dict[str, Any], ceiling: float) -> None:
    assert section["count"] == section["published"] > 0
    assert section["seconds"] > 0
    assert section["rate"] > 0
    assert _close(section["rate"] * section["seconds"], section["count"])
    assert section["ceiling"] == ceiling
    assert _close(section["ratio"], section["rate"] / ceiling)
    assert all(code == 0 for code in section["exit_codes"].values())
    # CPU over a smoke drain may round to zero ticks; only its presence and sign are checked.
    assert set(section["cpu_cores"]) >= {"cassandra", "emulator"}
    assert all(cores >= 0 for cores in section["cpu_cores"].values())


def _check_rounds(section: dict[str, Any], ceiling_samples: list[dict[str, Any]]) -> None:
    """A product drain reports its median round, set against that round's own ceiling."""
    rounds = section["rounds"]
    assert section["median_of_rounds"] == len(rounds) == len(ceiling_samples)
    for entry, ceiling in zip(rounds, ceiling_samples, strict=True):
        assert entry["ceiling"] == ceiling["rate"]
        assert _close(entry["ratio"], entry["rate"] / ceiling["rate"])
    ratios = sorted(entry["ratio"] for entry in rounds)
    assert section["ratio"] == ratios[(len(ratios) - 1) // 2]
    assert section["ratio_range"] == [ratios[0], ratios[-1]]
    median = rounds[section["round"] - 1]
    assert (section["rate"], section["ceiling"]) == (median["rate"], median["ceiling"])
    _check_drain(section, section["ceiling"])


def test_every_section_is_there_with_files(smoke: tuple[dict[str, Any], Path]) -> None:
    results, out = smoke
    assert set(SECTIONS) <= set(results)
    assert "failures" not in results, results["failures"]
    assert results["smoke"] is True
    assert results["machine"]["nproc"] >= 1
    for name in ("results.json", "table.txt", "throughput.png", "latency.png"):
        assert (out / name).stat().st_size > 0, name
    assert "order consumer drain" in (out / "table.txt").read_text()


def test_drains_agree_with_the_ceilings(smoke: tuple[dict[str, Any], Path]) -> None:
    results, _ = smoke
    ceilings = results["ceilings"]
    for kind in ("orders", "payments"):
        samples = ceilings[kind]["samples"]
        assert len(samples) == results["sizes"]["drain_rounds"]
        assert ceilings[kind]["rate"] == max(s["rate"] for s in samples) > 0
        for sample in samples:
            assert sample["count"] == sample["published"] == results["sizes"]["ceiling_orders"]
    _check_rounds(results["order_drain"], ceilings["orders"]["samples"])
    assert results["order_drain"]["published"] == results["sizes"]["orders"]
    for key in ("orders_present", "orders_missing"):
        _check_rounds(results["payment_drain"][key], ceilings["payments"]["samples"])
    for kind in ("orders", "payments"):
        runs = results["scale_out"][kind]
        _check_drain(runs["one"], ceilings[kind]["rate"])
        _check_drain(runs["two"], ceilings[kind]["rate"])
        assert runs["two"]["processes"] == 2
        assert _close(runs["speedup"], runs["two"]["rate"] / runs["one"]["rate"])


def test_dlq_passes_join_everything_and_report_tombstones(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, _ = smoke
    dlq = results["dlq_pass"]
    assert dlq["exit_code"] == 0
    assert dlq["parked"] == dlq["scanned"] == dlq["reconciled"] == dlq["joined_rows"] > 0
    assert dlq["left_in_dlq"] == 0
    assert _close(dlq["rate"], dlq["reconciled"] / dlq["pass_seconds"])
    assert _close(dlq["ratio"], dlq["rate"] / results["ceilings"]["payments"]["rate"])
    tomb = results["tombstones"]
    assert tomb["deletes"] == results["sizes"]["tombstones"]
    assert tomb["exit_code"] == 0
    assert tomb["scanned"] == tomb["waiting"] == tomb["live_rows"]
    assert tomb["seconds"] > 0
    assert tomb["clean_pass_seconds"] > 0
    assert _close(tomb["ratio"], tomb["clean_pass_seconds"] / tomb["seconds"])
    assert tomb["cassandra_warnings"] >= 0
    one = tomb["one_range"]  # the same table, read from one range for the whole ring
    assert one["exit_code"] == 0
    assert one["scanned"] == one["waiting"] == tomb["live_rows"]
    assert _close(one["ratio"], tomb["clean_pass_seconds"] / one["seconds"])


def test_end_to_end_latencies_and_memory(smoke: tuple[dict[str, Any], Path]) -> None:
    results, _ = smoke
    e2e = results["e2e"]
    assert e2e["sustainable_messages_per_s"] == e2e["saturation"]["sustained_messages_per_s"] > 0
    for label, share in (("half", 0.5), ("full", 1.0)):
        run = e2e[label]
        assert _close(run["requested_rate"], share * e2e["sustainable_messages_per_s"])
        assert run["complete_rows"] == run["orders"] == run["latency"]["count"] > 0
        by_path = run["latency_by_path"]
        assert sum(part["count"] for part in by_path.values()) == run["orders"]
        joined = sum(by_path[path]["count"] for path in ("stream", "order", "dlq"))
        assert joined == run["payments_joined"]
        latency = run["latency"]
        assert 0 <= latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
        assert all(code == 0 for code in run["exit_codes"].values())
    services = results["memory"]["services"]
    assert set(services) == {"order-consumer", "payment-consumer", "dlq-worker"}
    for entry in services.values():
        assert entry["peak_rss_bytes"] > 0
        assert _close(entry["ratio"], entry["peak_rss_bytes"] / results["memory"]["limit_bytes"])


def test_the_verifier_passes_intact_tables_and_counts_each_breakage(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, out = smoke
    v = results["verifier"]
    orders = results["sizes"]["verify_orders"]
    assert v["orders"] == orders > 0
    intact, broken = v["intact"], v["broken"]
    assert intact["exit_code"] == 0, intact["examples"]
    assert intact["counts"] == {}
    # Every order's row and every parked orphan (1 % of the orders, at least 3) was read.
    assert intact["rows_read"] == orders + max(3, orders // 100)
    assert broken["exit_code"] == 1
    assert broken["counts"] == v["expected_counts"]
    assert v["counts_exact"] is True
    assert sum(v["expected_counts"].values()) == 14
    for run in (intact, broken):
        assert run["peak_rss_bytes"] >= run["peak_rss_sampled_bytes"] > 0
        assert _close(run["rows_per_s"] * run["seconds"], run["rows_read"])
        assert 0 < run["index_seconds"] < run["seconds"]
    assert "ecom-verify, " in (out / "table.txt").read_text()


def test_the_report_engines_scan_the_same_rows_and_agree(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    results, out = smoke
    r = results["report"]
    assert r["orders"] == results["sizes"]["report_rows"] > 0
    rows = r["orders"] + r["parked"]
    assert len(r["rounds"]) == results["sizes"]["report_rounds"]
    for entry in r["rounds"]:
        bare, engine = entry["bare"], entry["embedded"]
        assert bare["rows"] == engine["rows"] == rows  # the same scan, with or without DuckDB
        assert 0 < engine["scan_seconds"] <= engine["total_seconds"]
        assert _close(entry["ratio"], engine["rows_per_s"] / bare["rows_per_s"])
        assert bare["peak_rss_bytes"] > 0
        assert engine["peak_rss_bytes"] > 0
    assert r["spark_error"] is None
    assert r["spark"]["rows"] == rows
    assert r["figures_equal"] is True, r["figures_differ"]
    assert "embedded engine scan" in (out / "table.txt").read_text()
