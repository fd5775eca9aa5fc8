"""Draining a backlog: the ceilings, the product's consumers, one or two processes each.

Messages are published before the consumer starts; the figure is rows per second from the
first row written to the last (see :mod:`ecom_devtools.bench.measure`). CPU use of the
consumers, Cassandra and the emulator over the drain is recorded to explain the limits.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ecom_devtools.bench import profiling
from ecom_devtools.bench.context import Bench, Section, ratio
from ecom_devtools.bench.measure import CpuMeter, Drain, wait_first, wait_written
from ecom_devtools.bench.stack import PROJECT, ModuleProcess, Stage, running, staged
from ecom_devtools.bench.workload import plan, publish_all, seed_orders
from ecom_devtools.services import ServiceProcess


@dataclass(frozen=True)
class DrainSpec:
    """What one drain runs: which side, how many messages, which consumer, how many copies."""

    name: str
    kind: str  # "orders" or "payments"
    count: int
    consumer: str  # "ceiling", "order-consumer" or "payment-consumer"
    copies: int = 1
    orders_exist: bool = True  # payments only: seed the orders first (else all are parked)


def _consumers(bench: Bench, stage: Stage, spec: DrainSpec) -> list[ServiceProcess]:
    if spec.consumer != "ceiling":
        return [stage.service(spec.consumer, index=i) for i in range(spec.copies)]
    p, sizes = stage.settings.pubsub, bench.options.sizes
    subscription = p.orders_subscription if spec.kind == "orders" else p.payments_subscription
    args = [
        spec.kind, "--project", PROJECT, "--subscription", subscription,
        "--table", stage.orders_table, "--cql-port", str(bench.infra.cql_port),
        "--pullers", str(sizes.ceiling_pullers),
    ]  # fmt: skip
    log = bench.infra.logs / f"{stage.tag}-ceiling.log"
    return [ModuleProcess("ceiling", args, log, module="ecom_devtools.bench.ceilings")]


async def _publish(bench: Bench, stage: Stage, spec: DrainSpec) -> list[int]:
    work = plan(spec.count)
    ids = work.order_ids
    p = stage.settings.pubsub
    if spec.kind == "orders":
        await publish_all(p.orders_topic, work.orders)
    else:
        if spec.orders_exist:
            await seed_orders(bench.cql, stage, ids)
        await publish_all(p.payments_topic, work.payments)
    return ids


def _target(stage: Stage, spec: DrainSpec) -> tuple[str, str]:
    if spec.kind == "orders":
        return stage.orders_table, "order_ingested_at"
    if spec.orders_exist:
        return stage.orders_table, "payment_ingested_at"
    return stage.dlq_table, "parked_at"


async def drain(bench: Bench, spec: DrainSpec, *, profile: bool = False) -> Section:
    """Publish, start the consumer(s), wait for every row; rate and CPU use."""
    await bench.fresh_emulator()
    async with staged(bench.infra, spec.name.replace("_", "-")) as stage:
        return await _drain_on(bench, stage, spec, profile=profile)


async def _drain_on(bench: Bench, stage: Stage, spec: DrainSpec, *, profile: bool) -> Section:
    ids = await _publish(bench, stage, spec)
    table, column = _target(stage, spec)
    async with running(stage, _consumers(bench, stage, spec)) as procs:
        alive = lambda: all(p.poll() in (None, 0) for p in procs.processes)  # noqa: E731
        timeout = 60 + spec.count / 200
        # CPU is counted from the first row on, so process start-up (imports) is left out.
        await wait_first(bench.cql, table, column, ids, timeout=timeout, alive=alive)
        meter = CpuMeter({**procs.pids(), **bench.server_pids}).start()
        with contextlib.ExitStack() as spies:
            if profile:
                out = bench.options.out / "profiles"
                pids = list(procs.pids().values())
                spies.enter_context(profiling.recording(out, spec.name, pids))
            times = await wait_written(bench.cql, table, column, ids, timeout=timeout, alive=alive)
        cores = meter.stop()
    result = Drain.of(times)
    bench.timelines[spec.name] = result.timeline
    consumer_cores = sum(v for k, v in cores.items() if k not in bench.server_pids)
    return {
        "published": spec.count,
        "count": result.count,
        "seconds": round(result.seconds, 3),
        "rate": round(result.rate, 1),
        "processes": spec.copies,
        "cpu_cores": cores,
        "consumer_cpu_us_per_message": round(1e6 * consumer_cores * meter.wall / result.count, 1),
        "exit_codes": procs.exit_codes,
        "timeline": result.timeline,  # (seconds since the first write, rows/s)
    }


async def warm_up(bench: Bench) -> None:
    """A throwaway drain: the JVMs (Cassandra, emulator) compile their hot paths first."""
    if bench.options.smoke:
        return  # smoke figures mean nothing anyway; save the time
    size = min(20_000, bench.options.sizes.ceiling_orders)
    await drain(bench, DrainSpec("warm_up", "orders", size, "ceiling"))
    bench.timelines.pop("warm_up", None)


async def ceilings(bench: Bench, round_no: int) -> None:
    """Measure both minimal consumers; keep every sample and the best as the ceiling."""
    size = bench.options.sizes.ceiling_orders
    section = bench.results.setdefault("ceilings", {})
    for kind in ("orders", "payments"):
        spec = DrainSpec(f"ceiling_{kind}_{round_no}", kind, size, "ceiling")
        measured = await drain(bench, spec)
        entry = section.setdefault(kind, {"samples": [], "rate": 0.0})
        entry["samples"].append(measured)
        entry["rate"] = max(s["rate"] for s in entry["samples"])
        entry["pullers"] = bench.options.sizes.ceiling_pullers


def _against(bench: Bench, measured: Section, kind: str) -> Section:
    ceiling = bench.ceiling(kind)
    return {**measured, "ceiling": ceiling, "ratio": ratio(measured["rate"], ceiling)}


async def order_drain(bench: Bench) -> None:
    spec = DrainSpec("order_drain", "orders", bench.options.sizes.orders, "order-consumer")
    bench.results["order_drain"] = _against(bench, await drain(bench, spec), "orders")


async def payment_drains(bench: Bench) -> None:
    count = bench.options.sizes.orders
    present = DrainSpec("payment_drain", "payments", count, "payment-consumer")
    missing = DrainSpec("payment_park", "payments", count, "payment-consumer", orders_exist=False)
    bench.results["payment_drain"] = {
        "orders_present": _against(bench, await drain(bench, present), "payments"),
        "orders_missing": _against(bench, await drain(bench, missing), "payments"),
    }


async def profiled_drains(bench: Bench) -> None:
    """The same drains under py-spy; their rates are reported apart (profiling slows them)."""
    count = bench.options.sizes.orders
    section: Section = {}
    for spec in (
        DrainSpec("profile_orders", "orders", count, "order-consumer"),
        DrainSpec("profile_payments", "payments", count, "payment-consumer"),
    ):
        measured = await drain(bench, spec, profile=True)
        summary = profiling.summarise(bench.options.out / "profiles" / f"{spec.name}-0.txt")
        section[spec.name] = {"rate_under_profiler": measured["rate"], **summary}
    bench.results["profiles"] = section


async def scale_out(bench: Bench) -> None:
    """One versus two consumer processes of each kind, the same backlog size."""
    count = bench.options.sizes.scale_orders
    section: Section = {}
    for kind, consumer in (("orders", "order-consumer"), ("payments", "payment-consumer")):
        one = await drain(bench, DrainSpec(f"scale_{kind}_1", kind, count, consumer))
        two = await drain(bench, DrainSpec(f"scale_{kind}_2", kind, count, consumer, copies=2))
        section[kind] = {
            "one": _against(bench, one, kind),
            "two": _against(bench, two, kind),
            "speedup": ratio(two["rate"], one["rate"]),
        }
    bench.results["scale_out"] = section
