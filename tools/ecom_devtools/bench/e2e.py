"""End to end: the producer and every service together, unpaced and then at a fixed rate.

Latency runs from the moment Pub/Sub accepted a message (its ``publishTime``, read afterwards
from tap subscriptions that got a copy of every message) to the moment the order's row was
complete: order columns written and, if the order has a payment, payment columns written (by
the payment consumer; or, when the payment came first and was parked, by the order consumer
as its order arrived, or by the DLQ worker's pass). For a pair, the clock starts when the
later of the two messages was published.

What is measured is the pipeline in its steady state, as it runs in production: the consumers
have started (connected, statements prepared) before the producer publishes its first message,
and the emulator and Cassandra have already carried an unmeasured paced run of the same kind
(``--e2e-warm-up-seconds``). Without both, the first seconds of every run would measure
start-up instead: connecting, preparing, and a freshly started emulator compiling its hot
paths.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import aiohttp

from ecom_devtools.bench.context import Bench, ratio
from ecom_devtools.bench.measure import (
    BenchError,
    CpuMeter,
    epoch,
    percentile,
    scan,
    timeline,
    wait_exit,
    wait_written,
)
from ecom_devtools.bench.results import Memory, ServiceMemory
from ecom_devtools.bench.run_results import (
    EndToEnd,
    FlowFigures,
    FlowRun,
    LatencySummary,
    PacedRun,
)
from ecom_devtools.bench.stack import (
    PROJECT,
    Running,
    Stage,
    running,
    staged,
    tap_names,
    until_started,
)
from ecom_devtools.bench.workload import ID_BASE
from ecom_shared.observability.procstat import peak_rss_bytes
from ecom_verifier.manifest import ExpectedState, load_expected

_SHARES = ["--duplicates", "0", "--reemits", "0", "--second-payments", "0"]
_MSGS_PER_ORDER = 2.0  # the producer's mix: an order, 95 % a payment, orphans, malformed


async def _publish_times(host_port: str, subscription: str) -> dict[int, float]:
    """order_id -> earliest publishTime among the tap's copies of messages for that order."""
    url = f"http://{host_port}/v1/projects/{PROJECT}/subscriptions/{subscription}"
    seen: dict[int, float] = {}
    empty = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        while empty < 2:  # noqa: PLR2004 - an immediate pull may come back empty once
            body = {"maxMessages": 1000, "returnImmediately": True}
            async with http.post(f"{url}:pull", json=body) as response:
                got = (await response.json()).get("receivedMessages", [])
            empty = 0 if got else empty + 1
            for item in got:
                _note(seen, item["message"])
            if got:
                ack = {"ackIds": [item["ackId"] for item in got]}
                async with http.post(f"{url}:acknowledge", json=ack) as response:
                    response.raise_for_status()
    return seen


def _note(seen: dict[int, float], message: dict[str, Any]) -> None:
    try:
        order_id = int(json.loads(base64.b64decode(message.get("data", "")))["order_id"])
    except (ValueError, KeyError, TypeError):
        return  # malformed on purpose: it never makes a row
    when = datetime.fromisoformat(message["publishTime"]).timestamp()
    seen[order_id] = min(when, seen.get(order_id, when))


def _latencies(
    expected: ExpectedState, rows: list[tuple[Any, ...]], published: list[dict[int, float]]
) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """Per complete order: (publish moments, done moments, latencies split by payment path)."""
    done_at = {r[0]: (epoch(r[1]), epoch(r[2]), r[3]) for r in rows}
    starts, ends = [], []
    split: dict[str, list[float]] = {"stream": [], "order": [], "dlq": [], "no_payment": []}
    orders_pub, payments_pub = published
    for order_id in expected.orders:
        order_at, payment_at, source = done_at[order_id]
        has_payment = order_id in expected.payments
        if order_id not in orders_pub or (has_payment and order_id not in payments_pub):
            continue  # no tap copy (never seen so far); counted by the caller as unmatched
        start = max(orders_pub[order_id], payments_pub[order_id] if has_payment else 0.0)
        end = max(order_at or 0.0, (payment_at or 0.0) if has_payment else 0.0)
        starts.append(start)
        ends.append(end)
        split[source if has_payment else "no_payment"].append(end - start)
    return starts, ends, split


def _summary(values: list[float]) -> LatencySummary:
    ordered = sorted(values)
    if not ordered:
        return LatencySummary(0)
    return LatencySummary(
        count=len(ordered),
        p50_ms=round(1000 * percentile(ordered, 0.5), 1),
        p99_ms=round(1000 * percentile(ordered, 0.99), 1),
        max_ms=round(1000 * ordered[-1], 1),
    )


async def _wait_complete(bench: Bench, stage: Stage, expected: ExpectedState) -> None:
    timeout = 180 + len(expected.orders) / 100
    table = stage.orders_table
    orders = list(expected.orders)
    await wait_written(bench.cql, table, "order_ingested_at", orders, timeout=timeout)
    payers = list(expected.payments)
    await wait_written(bench.cql, table, "payment_ingested_at", payers, timeout=timeout)


def _peaks(procs: Running) -> dict[str, int]:
    return {n: peak for n, pid in procs.pids().items() if (peak := peak_rss_bytes(pid))}


async def run_flow(bench: Bench, name: str, orders: int, rate: float) -> FlowRun:
    """Producer and services on a fresh stage; wait until every row is complete."""
    async with staged(bench.infra, name.replace("_", "-"), taps=True) as stage:
        return await _flow_on(bench, stage, name, orders, rate)


async def _flow_on(bench: Bench, stage: Stage, name: str, orders: int, rate: float) -> FlowRun:
    manifest = bench.infra.logs / f"{name}-manifest.jsonl"
    args = ["--orders", str(orders), "--rate", str(rate), "--id-base", str(ID_BASE)]
    producer = stage.service("producer", [*args, "--manifest", str(manifest), *_SHARES])
    services = [stage.service(s) for s in ("order-consumer", "payment-consumer", "dlq-worker")]
    worker_env = {"ECOM_WORKER__INTERVAL_SECONDS": str(bench.options.sizes.dlq_interval)}
    async with running(stage, services, worker_env) as procs:
        await until_started(procs.processes)  # as in production: consumers wait for work
        procs.start(producer)
        meter = CpuMeter({**procs.pids(), **bench.server_pids}).start()
        await wait_exit(producer, timeout=600 + orders / 50, meter=meter)
        expected = load_expected(manifest)
        await _wait_complete(bench, stage, expected)
        cores, peaks = meter.stop(), _peaks(procs)
        figures = await _measure(bench, stage, expected, name)
    return FlowRun(
        figures=figures,
        requested_rate=rate,
        cpu_cores=cores,
        peak_rss_bytes=peaks,
        exit_codes=procs.exit_codes,
    )


async def _measure(bench: Bench, stage: Stage, expected: ExpectedState, name: str) -> FlowFigures:
    columns = ["order_id", "order_ingested_at", "payment_ingested_at", "payment_source"]
    rows = await scan(bench.cql, stage.orders_table, columns)
    host = bench.infra.pubsub_host_port
    p = stage.settings.pubsub
    taps = tap_names(stage)
    published = [await _publish_times(host, taps[t]) for t in (p.orders_topic, p.payments_topic)]
    starts, ends, split = _latencies(expected, rows, published)
    every = [x for values in split.values() for x in values]
    if not every:
        raise BenchError("no publish times came back from the tap subscriptions")
    bench.latencies[name] = sorted(every)
    span = max(max(ends) - min(starts), 1e-3)
    bench.timelines[name] = timeline(sorted(ends))
    return FlowFigures(
        published_messages=expected.published,
        orders=len(expected.orders),
        payments_joined=len(expected.payments),
        complete_rows=len(every),
        seconds=round(span, 3),
        sustained_messages_per_s=round(expected.published / span, 1),
        sustained_orders_per_s=round(len(expected.orders) / span, 1),
        latency=_summary(every),
        latency_by_path={k: _summary(v) for k, v in split.items()},
    )


async def end_to_end(bench: Bench) -> None:
    sizes = bench.options.sizes
    # One emulator for the whole section (a restart would start it cold again): its memory
    # holds these runs' messages (about 250k copies at the default sizes) within its heap.
    await bench.fresh_emulator()
    full = sizes.e2e_rate
    per_order = _MSGS_PER_ORDER
    saturation = None
    if full <= 0:
        saturation = await run_flow(bench, "e2e_saturation", sizes.e2e_saturation_orders, 0.0)
        full = saturation.figures.sustained_messages_per_s
        per_order = saturation.figures.published_messages / saturation.figures.orders

    def paced_orders(rate: float, seconds: float) -> int:
        return max(10, int(rate * seconds / per_order))

    half = round(full * 0.5, 1)
    warm_up = None
    if sizes.e2e_warm_up_seconds > 0:
        warm = paced_orders(half, sizes.e2e_warm_up_seconds)
        warm_up = await run_flow(bench, "e2e_warm_up", warm, half)
        bench.latencies.pop("e2e_warm_up", None)  # kept in the JSON, not in the plots
        bench.timelines.pop("e2e_warm_up", None)
    paced = []
    for label, rate in (("half", half), ("full", round(full, 1))):
        orders = paced_orders(rate, sizes.e2e_seconds)
        measured = await run_flow(bench, f"e2e_{label}", orders, rate)
        paced.append(PacedRun(measured, ratio(measured.figures.sustained_messages_per_s, rate)))
    section = EndToEnd(
        saturation=saturation,
        sustainable_messages_per_s=full,
        warm_up=warm_up,
        half=paced[0],
        full=paced[1],
    )
    bench.results.record("e2e", section)


def memory_section(bench: Bench, limit_bytes: int) -> Memory:
    """Peak RSS of each service at full rate, against the project's limit."""
    e2e = bench.results.get("e2e", EndToEnd)
    peaks = e2e.full.run.peak_rss_bytes if e2e else {}
    return Memory(
        limit_bytes=limit_bytes,
        services={
            name.rsplit("-", 1)[0]: ServiceMemory(peak, ratio(peak, limit_bytes))
            for name, peak in peaks.items()
        },
    )
