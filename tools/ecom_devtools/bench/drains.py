"""Draining a backlog: the ceilings, the product's consumers, one or two processes each.

Messages are published before the consumer starts; the figure is rows per second from the
first row written to the last (see :mod:`ecom_devtools.bench.measure`). CPU use of the
consumers, Cassandra and the emulator over the drain is recorded to explain the limits.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ecom_devtools.bench import profiling
from ecom_devtools.bench.context import Bench, ratio
from ecom_devtools.bench.drain_results import (
    AgainstCeiling,
    Ceilings,
    DrainResult,
    PairedDrain,
    PaymentDrain,
    ProfiledDrain,
    Profiles,
    RoundsSummary,
    ScaleOut,
    ScalePair,
    WarmUp,
)
from ecom_devtools.bench.measure import CpuMeter, Drain, wait_first, wait_written
from ecom_devtools.bench.stack import PROJECT, ModuleProcess, Stage, running, staged
from ecom_devtools.bench.workload import plan, publish_all, seed_orders
from ecom_devtools.local.services import ServiceProcess


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


async def drain(bench: Bench, spec: DrainSpec, *, profile: bool = False) -> DrainResult:
    """Publish, start the consumer(s), wait for every row; rate and CPU use."""
    await bench.fresh_emulator()
    async with staged(bench.infra, spec.name.replace("_", "-")) as stage:
        return await _drain_on(bench, stage, spec, profile=profile)


async def _drain_on(bench: Bench, stage: Stage, spec: DrainSpec, *, profile: bool) -> DrainResult:
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
    return DrainResult(
        published=spec.count,
        count=result.count,
        seconds=round(result.seconds, 3),
        rate=round(result.rate, 1),
        processes=spec.copies,
        cpu_cores=cores,
        consumer_cpu_us_per_message=round(1e6 * consumer_cores * meter.wall / result.count, 1),
        exit_codes=procs.exit_codes,
        timeline=result.timeline,
    )


async def warm_up(bench: Bench) -> None:
    """Throwaway drains of both minimal consumers, so that the JVMs (Cassandra, emulator) have
    compiled their hot paths before anything is measured: a JVM still compiling spends several
    times the CPU per order it spends later, which would put the first ceiling far below the
    others. The warm-up's figures are kept in ``results.json`` (``warm_up``), out of the table.
    """
    if bench.options.smoke:
        return  # smoke figures mean nothing anyway; save the time
    size = bench.options.sizes.ceiling_orders
    section = WarmUp()
    bench.results.record("warm_up", section)
    for kind in ("orders", "payments"):
        measured = await drain(bench, DrainSpec(f"warm_up_{kind}", kind, size, "ceiling"))
        bench.timelines.pop(f"warm_up_{kind}", None)
        section = WarmUp({**section.drains, kind: measured})
        bench.results.record("warm_up", section)


def _products(bench: Bench, kind: str, round_no: int) -> list[tuple[str, DrainSpec]]:
    """The product's drains of one round: (where the result goes, what to run)."""
    count = bench.options.sizes.orders
    if kind == "orders":
        if not bench.options.wants("order_drain"):
            return []
        spec = DrainSpec(f"order_drain_{round_no}", kind, count, "order-consumer")
        return [("order_drain", spec)]
    if not bench.options.wants("payment_drain"):
        return []
    consumer = "payment-consumer"
    return [
        ("orders_present", DrainSpec(f"payment_drain_{round_no}", kind, count, consumer)),
        ("orders_missing",
         DrainSpec(f"payment_park_{round_no}", kind, count, consumer, orders_exist=False)),
    ]  # fmt: skip


async def drain_rounds(bench: Bench) -> None:
    """Each minimal consumer and the product's drains of the same kind, back to back, in
    ``drain_rounds`` rounds; each product drain is set against its own round's ceiling.

    On a shared machine the same drain's rate moves between runs minutes apart, so a product
    drain compared with the best of several ceilings measured at other times mostly measures
    when each ran. Pairs measured back to back share the machine's state; odd
    rounds run the ceiling first and even rounds run it last, so a drift over the run favours
    neither side. The reported ratio is the median round's (see :func:`summarise_rounds`).
    """
    rounds: dict[str, list[PairedDrain]] = {}
    for round_no in range(1, bench.options.sizes.drain_rounds + 1):
        for kind in ("orders", "payments"):
            ceiling_spec = None
            if bench.options.wants("ceilings"):
                size = bench.options.sizes.ceiling_orders
                ceiling_spec = DrainSpec(f"ceiling_{kind}_{round_no}", kind, size, "ceiling")
            products = _products(bench, kind, round_no)
            ceiling: DrainResult | None = None
            if ceiling_spec is not None and round_no % 2 == 1:
                ceiling = await _ceiling_sample(bench, kind, ceiling_spec)
            measured = [(key, await drain(bench, spec)) for key, spec in products]
            if ceiling_spec is not None and round_no % 2 == 0:
                ceiling = await _ceiling_sample(bench, kind, ceiling_spec)
            for key, section in measured:
                rounds.setdefault(key, []).append(_paired(section, ceiling, round_no))
    if "order_drain" in rounds:
        bench.results.record("order_drain", summarise_rounds(rounds["order_drain"]))
    if "orders_present" in rounds:
        present = summarise_rounds(rounds["orders_present"])
        missing = summarise_rounds(rounds["orders_missing"])
        bench.results.record("payment_drain", PaymentDrain(present, missing))


async def _ceiling_sample(bench: Bench, kind: str, spec: DrainSpec) -> DrainResult:
    measured = await drain(bench, spec)
    known = bench.results.get("ceilings", Ceilings) or Ceilings()
    pullers = bench.options.sizes.ceiling_pullers
    bench.results.record("ceilings", known.with_sample(kind, measured, pullers))
    return measured


def _paired(measured: DrainResult, ceiling: DrainResult | None, round_no: int) -> PairedDrain:
    """A product drain with its round's ceiling: rate ratio and CPU-per-message ratio."""
    rate = float(ceiling.rate) if ceiling else 0.0
    cpu = float(ceiling.consumer_cpu_us_per_message) if ceiling else 0.0
    return PairedDrain(
        drain=measured,
        round=round_no,
        ceiling_first=round_no % 2 == 1,
        ceiling=rate,
        ratio=ratio(measured.rate, rate),
        ceiling_cpu_us_per_message=cpu,
        cpu_ratio=ratio(cpu, measured.consumer_cpu_us_per_message) if ceiling else None,
    )


def summarise_rounds(rounds: list[PairedDrain]) -> RoundsSummary:
    """The median round (the lower of the middle two for an even count) with every round's
    figures beside it: ``rounds`` (rate, ceiling, ratio, CPU) and ``ratio_range``."""
    ranked = sorted(rounds, key=lambda r: (r.ratio or 0.0, r.rate))
    median = ranked[(len(ranked) - 1) // 2]
    ratios = [r.ratio for r in rounds if r.ratio is not None]
    ratio_range = (min(ratios), max(ratios)) if ratios else None
    return RoundsSummary(median, tuple(rounds), ratio_range)


def _against(bench: Bench, measured: DrainResult, kind: str) -> AgainstCeiling:
    """A drain measured once (after every ceiling), against the best ceiling of the run."""
    ceiling, cpu = bench.ceiling(kind), bench.ceiling_cpu(kind)
    return AgainstCeiling(
        drain=measured,
        ceiling=ceiling,
        ratio=ratio(measured.rate, ceiling),
        ceiling_cpu_us_per_message=cpu,
        cpu_ratio=ratio(cpu, measured.consumer_cpu_us_per_message),
    )


async def profiled_drains(bench: Bench) -> None:
    """The same drains under py-spy; their rates are reported apart (profiling slows them)."""
    count = bench.options.sizes.orders
    section: dict[str, ProfiledDrain] = {}
    for spec in (
        DrainSpec("profile_orders", "orders", count, "order-consumer"),
        DrainSpec("profile_payments", "payments", count, "payment-consumer"),
    ):
        measured = await drain(bench, spec, profile=True)
        summary = profiling.summarise(bench.options.out / "profiles" / f"{spec.name}-0.txt")
        section[spec.name] = ProfiledDrain(measured.rate, summary)
    bench.results.record("profiles", Profiles(section))


async def scale_out(bench: Bench) -> None:
    """One versus two consumer processes of each kind, the same backlog size."""
    count = bench.options.sizes.scale_orders
    section: dict[str, ScalePair] = {}
    for kind, consumer in (("orders", "order-consumer"), ("payments", "payment-consumer")):
        one = await drain(bench, DrainSpec(f"scale_{kind}_1", kind, count, consumer))
        two = await drain(bench, DrainSpec(f"scale_{kind}_2", kind, count, consumer, copies=2))
        section[kind] = ScalePair(
            one=_against(bench, one, kind),
            two=_against(bench, two, kind),
            speedup=ratio(two.rate, one.rate),
        )
    bench.results.record("scale_out", ScaleOut(section))
