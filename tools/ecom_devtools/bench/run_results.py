"""The results of the scenarios that run services to their end or for a set time: the DLQ
worker's passes, the end-to-end flows and the verifier (see :mod:`ecom_devtools.bench.dlq`,
:mod:`ecom_devtools.bench.e2e`, :mod:`ecom_devtools.bench.verifier`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ecom_devtools.bench.results import JsonObject


@dataclass(frozen=True)
class WorkerPass:
    """One ``ecom-dlq-worker --once``: its own pass report, exit code, wall time and CPU."""

    exit_code: int
    wall_seconds: float
    pass_seconds: float | None
    scanned: int
    reconciled: int
    waiting: int
    failed: int
    range_splits: int
    error: str | None
    cpu_cores: Mapping[str, float]

    @property
    def seconds(self) -> float:
        """The pass's own time when it reported one, else the process's."""
        return self.pass_seconds or self.wall_seconds

    def as_json(self) -> JsonObject:
        return {
            "exit_code": self.exit_code,
            "wall_seconds": self.wall_seconds,
            "pass_seconds": self.pass_seconds,
            "scanned": self.scanned,
            "reconciled": self.reconciled,
            "waiting": self.waiting,
            "failed": self.failed,
            "range_splits": self.range_splits,
            "error": self.error,
            "cpu_cores": self.cpu_cores,
        }


@dataclass(frozen=True)
class DlqPass:
    parked: int
    worker: WorkerPass
    joined_rows: int
    left_in_dlq: int
    rate: float
    ceiling: float
    ratio: float | None

    def as_json(self) -> JsonObject:
        return {
            "parked": self.parked,
            **self.worker.as_json(),
            "joined_rows": self.joined_rows,
            "left_in_dlq": self.left_in_dlq,
            "rate": self.rate,
            "ceiling": self.ceiling,
            "ratio": self.ratio,
        }


@dataclass(frozen=True)
class TimedPass:
    """A pass with its time and its ratio to a clean table's pass."""

    worker: WorkerPass
    seconds: float
    ratio: float | None

    def as_json(self) -> JsonObject:
        return {**self.worker.as_json(), "seconds": self.seconds, "ratio": self.ratio}


@dataclass(frozen=True)
class Tombstones:
    one_range: TimedPass
    deletes: int
    live_rows: int
    delete_seconds: float
    timed: TimedPass
    clean_pass_seconds: float
    cassandra_warnings: int
    cassandra_errors: int
    cassandra_lines: list[str]

    def as_json(self) -> JsonObject:
        return {
            "one_range": self.one_range.as_json(),
            "deletes": self.deletes,
            "live_rows": self.live_rows,
            "delete_seconds": self.delete_seconds,
            **self.timed.worker.as_json(),
            "seconds": self.timed.seconds,
            "clean_pass_seconds": self.clean_pass_seconds,
            "ratio": self.timed.ratio,
            "cassandra_warnings": self.cassandra_warnings,
            "cassandra_errors": self.cassandra_errors,
            "cassandra_lines": self.cassandra_lines,
        }


@dataclass(frozen=True)
class LatencySummary:
    """Publish-to-complete latencies of some rows; no percentiles when there were none."""

    count: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    def as_json(self) -> JsonObject:
        if not self.count:
            return {"count": 0}
        return {
            "count": self.count,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }


@dataclass(frozen=True)
class FlowFigures:
    """What the rows and the tap subscriptions tell of one end-to-end run."""

    published_messages: int
    orders: int
    payments_joined: int
    complete_rows: int
    seconds: float
    sustained_messages_per_s: float
    sustained_orders_per_s: float
    latency: LatencySummary
    latency_by_path: Mapping[str, LatencySummary]

    def as_json(self) -> JsonObject:
        return {
            "published_messages": self.published_messages,
            "orders": self.orders,
            "payments_joined": self.payments_joined,
            "complete_rows": self.complete_rows,
            "seconds": self.seconds,
            "sustained_messages_per_s": self.sustained_messages_per_s,
            "sustained_orders_per_s": self.sustained_orders_per_s,
            "latency": self.latency.as_json(),
            "latency_by_path": {k: v.as_json() for k, v in self.latency_by_path.items()},
        }


@dataclass(frozen=True)
class FlowRun:
    """The producer and every service on one stage, until every row was complete."""

    figures: FlowFigures
    requested_rate: float
    cpu_cores: Mapping[str, float]
    peak_rss_bytes: Mapping[str, int]
    exit_codes: Mapping[str, int | None]

    def as_json(self) -> JsonObject:
        return {
            **self.figures.as_json(),
            "requested_rate": self.requested_rate,
            "cpu_cores": self.cpu_cores,
            "peak_rss_bytes": self.peak_rss_bytes,
            "exit_codes": self.exit_codes,
        }


@dataclass(frozen=True)
class PacedRun:
    """A flow at a fixed rate, and how close to that rate it kept."""

    run: FlowRun
    ratio_to_requested: float | None

    def as_json(self) -> JsonObject:
        return {**self.run.as_json(), "ratio_to_requested": self.ratio_to_requested}


@dataclass(frozen=True)
class EndToEnd:
    """The unpaced run that found the sustainable rate (unless it was given), the unmeasured
    warm-up (if any), then the runs at half and at the full rate."""

    saturation: FlowRun | None
    sustainable_messages_per_s: float
    warm_up: FlowRun | None
    half: PacedRun
    full: PacedRun

    def as_json(self) -> JsonObject:
        section: JsonObject = {}
        if self.saturation is not None:
            section["saturation"] = self.saturation.as_json()
        section["sustainable_messages_per_s"] = self.sustainable_messages_per_s
        if self.warm_up is not None:
            section["warm_up"] = self.warm_up.as_json()
        return section | {"half": self.half.as_json(), "full": self.full.as_json()}


@dataclass(frozen=True)
class VerifyRun:
    """``ecom-verify --json`` as a process: its report, wall time and peak RSS."""

    exit_code: int | None
    seconds: float
    index_seconds: float | None
    rows_read: int
    rows_per_s: float
    peak_rss_bytes: int
    peak_rss_sampled_bytes: int
    counts: Mapping[str, int]
    examples: Mapping[str, list[str]]

    def as_json(self) -> JsonObject:
        return {
            "exit_code": self.exit_code,
            "seconds": self.seconds,
            "index_seconds": self.index_seconds,
            "rows_read": self.rows_read,
            "rows_per_s": self.rows_per_s,
            "peak_rss_bytes": self.peak_rss_bytes,
            "peak_rss_sampled_bytes": self.peak_rss_sampled_bytes,
            "counts": self.counts,
            "examples": self.examples,
        }


@dataclass(frozen=True)
class VerifierResult:
    """The verifier on intact tables, then on broken ones, against the counts it must find."""

    orders: int
    manifest_lines: int
    manifest_bytes: int
    fill_seconds: float
    intact: VerifyRun
    broken: VerifyRun
    expected_counts: Mapping[str, int]

    @property
    def counts_exact(self) -> bool:
        return self.broken.counts == self.expected_counts

    def as_json(self) -> JsonObject:
        return {
            "orders": self.orders,
            "manifest_lines": self.manifest_lines,
            "manifest_bytes": self.manifest_bytes,
            "fill_seconds": self.fill_seconds,
            "intact": self.intact.as_json(),
            "broken": self.broken.as_json(),
            "expected_counts": self.expected_counts,
            "counts_exact": self.counts_exact,
        }
