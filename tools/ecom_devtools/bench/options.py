"""The benchmark's options: sizes of every scenario, ports, where results go; ``--smoke``."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = (
    "ceilings",
    "order_drain",
    "payment_drain",
    "dlq_pass",
    "tombstones",
    "e2e",
    "scale_out",
    "verifier",
    "report",
)
DEFAULT_SCENARIOS = SCENARIOS[:-2]
"""A full run leaves out the verifier and the report at 1M orders (long runs of their own):
ask for them with ``--only verifier`` or ``--only report``. The smoke run includes them."""


@dataclass(frozen=True)
class Sizes:
    """How much work each scenario does; every field is a command-line option."""

    # Messages per drain (orders, then payments): as many as a ceiling drains, so that each
    # ratio compares equal backlogs.
    orders: int = 50_000
    ceiling_orders: int = 50_000  # messages per ceiling measurement
    ceiling_pullers: int = 8  # pull loops of the minimal consumers (the product's default)
    drain_rounds: int = 3  # rounds of each ceiling beside the product's drains; median is used
    dlq_rows: int = 100_000  # parked payments whose orders exist
    tombstones: int = 1_000_000  # deletes the DLQ table has seen before the timed passes
    tombstone_live: int = 1_000  # parked rows still waiting among the tombstones
    e2e_saturation_orders: int = 20_000  # orders published unpaced to find the sustainable rate
    e2e_seconds: float = 30.0  # length of each paced end-to-end run
    e2e_rate: float = 0.0  # full sustainable rate in messages/s; 0 = measure it
    e2e_warm_up_seconds: float = 10.0  # an unmeasured paced run first, on the same servers
    dlq_interval: float = 30.0  # the DLQ worker's pass interval in end-to-end runs (its default)
    scale_orders: int = 50_000  # messages per scale-out drain
    verify_orders: int = 1_000_000  # orders (with payments) the verifier checks
    report_rows: int = 1_000_000  # orders in the report's table (80 % with a payment)
    report_rounds: int = 2  # bare scan and embedded engine, alternating; median round is used


SMOKE = Sizes(
    orders=400,
    ceiling_orders=400,
    ceiling_pullers=2,
    drain_rounds=1,
    dlq_rows=400,
    tombstones=2_000,
    tombstone_live=50,
    e2e_saturation_orders=150,
    e2e_seconds=1.5,
    e2e_warm_up_seconds=0.0,
    dlq_interval=0.5,
    scale_orders=400,
    verify_orders=2_000,
    report_rows=2_000,
    report_rounds=1,
)


@dataclass(frozen=True)
class BenchOptions:
    sizes: Sizes
    dir: Path
    out: Path
    cql_port: int = 29042
    storage_port: int = 27000
    jmx_port: int = 27199
    pubsub_port: int = 28085
    emulator_heap: str = "1g"
    only: tuple[str, ...] = SCENARIOS
    profile: bool = False
    plots: bool = True
    smoke: bool = False
    keep_data: bool = False

    def wants(self, scenario: str) -> bool:
        return scenario in self.only


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecom-bench",
        description="Benchmark the pipeline on its own Cassandra and Pub/Sub emulator; every "
        "figure is also given as a ratio to a ceiling measured in the same run.",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI (< 2 min)")
    parser.add_argument("--dir", type=Path, default=Path(".local") / "bench", help="infra dir")
    parser.add_argument("--out", type=Path, help="results dir (default: <dir>/results/<time>)")
    parser.add_argument("--cql-port", type=int, default=29042)
    parser.add_argument("--storage-port", type=int, default=27000)
    parser.add_argument("--jmx-port", type=int, default=27199)
    parser.add_argument("--pubsub-port", type=int, default=28085)
    parser.add_argument(
        "--emulator-heap",
        default="1g",
        help="the emulator's -Xmx, which also caps its direct memory (default 1g: with 512m "
        "it ran out of direct memory while the payment consumer parked 100k payments)",
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated scenarios of {','.join(SCENARIOS)} (default: all but verifier; "
        "with --smoke, all)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="record py-spy profiles of the drains"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the node's data in <dir>/infra between runs (not wiped at start or end), "
        "so that a later run reuses the report's filled table",
    )
    for field in dataclasses.fields(Sizes):
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            type=type(field.default),
            help=f"(default {field.default}; smoke {getattr(SMOKE, field.name)})",
        )
    return parser


def parse_options(argv: list[str] | None, stamp: str) -> BenchOptions:
    """Options from ``argv``; results go to ``<dir>/results/<stamp>`` unless ``--out`` says."""
    args = build_parser().parse_args(argv)
    base = SMOKE if args.smoke else Sizes()
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Sizes)
        if getattr(args, f.name) is not None
    }
    default = SCENARIOS if args.smoke else DEFAULT_SCENARIOS
    only = tuple(s.strip() for s in args.only.split(",")) if args.only else default
    unknown = [s for s in only if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"ecom-bench: unknown scenario(s) {unknown}; known: {SCENARIOS}")
    return BenchOptions(
        sizes=dataclasses.replace(base, **given),
        dir=args.dir.resolve(),
        out=(args.out or args.dir / "results" / stamp).resolve(),
        cql_port=args.cql_port,
        storage_port=args.storage_port,
        jmx_port=args.jmx_port,
        pubsub_port=args.pubsub_port,
        emulator_heap=args.emulator_heap,
        only=only,
        profile=args.profile,
        plots=not args.no_plots,
        smoke=args.smoke,
        keep_data=args.keep_data,
    )
