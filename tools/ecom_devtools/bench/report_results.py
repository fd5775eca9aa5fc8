"""The report benchmark's results (see :mod:`ecom_devtools.bench.report_engines`): each probe
run, the bare scan and the embedded engine paired by round, Spark's run, and whether the two
engines' figures agree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecom_devtools.bench.results import JsonObject

RATIO_TARGET = 0.80
"""The embedded engine's scan against the bare scan of the same round."""


@dataclass(frozen=True)
class ProbeRun:
    """One probe process: rows read, seconds of the scan alone (``None``: not separable, as
    in Spark) and in all, and peak RSS (``VmHWM``) of the process and of its JVM if any."""

    engine: str
    rows: int
    scan_seconds: float | None
    total_seconds: float
    peak_rss_bytes: int
    jvm_peak_rss_bytes: int | None = None

    @property
    def rows_per_s(self) -> float | None:
        """Rows per second of the scan (or, without a scan time, of the whole run)."""
        seconds = self.scan_seconds if self.scan_seconds is not None else self.total_seconds
        return round(self.rows / seconds, 1) if seconds > 0 else None

    @staticmethod
    def of(engine: str, measured: Mapping[str, Any]) -> ProbeRun:
        """From the probe's JSON line."""
        scan = measured.get("scan_seconds")
        return ProbeRun(
            engine=engine,
            rows=int(measured["rows"]),
            scan_seconds=None if scan is None else round(float(scan), 3),
            total_seconds=round(float(measured["total_seconds"]), 3),
            peak_rss_bytes=int(measured.get("peak_rss_bytes") or 0),
            jvm_peak_rss_bytes=measured.get("jvm_peak_rss_bytes"),
        )

    def as_json(self) -> JsonObject:
        return {
            "engine": self.engine,
            "rows": self.rows,
            "scan_seconds": self.scan_seconds,
            "total_seconds": self.total_seconds,
            "rows_per_s": self.rows_per_s,
            "peak_rss_bytes": self.peak_rss_bytes,
            "jvm_peak_rss_bytes": self.jvm_peak_rss_bytes,
        }


def ratio_of(figure: float | None, reference: float | None) -> float | None:
    if figure is None or not reference:
        return None
    return round(figure / reference, 3)


@dataclass(frozen=True)
class ScanRound:
    """A bare scan and an embedded run of one round (alternating which goes first)."""

    number: int
    bare: ProbeRun
    embedded: ProbeRun

    @property
    def ratio(self) -> float | None:
        """The embedded engine's scan rate as a share of this round's bare scan rate."""
        return ratio_of(self.embedded.rows_per_s, self.bare.rows_per_s)

    def as_json(self) -> JsonObject:
        return {
            "round": self.number,
            "bare": self.bare.as_json(),
            "embedded": self.embedded.as_json(),
            "ratio": self.ratio,
        }


def median_round(rounds: Sequence[ScanRound]) -> ScanRound:
    """The round of the median ratio (the lower middle one of an even count)."""
    if not rounds:
        raise ValueError("no round was measured")
    ranked = sorted(rounds, key=lambda r: (r.ratio is None, r.ratio or 0.0))
    return ranked[(len(ranked) - 1) // 2]


def best(runs: Sequence[ProbeRun]) -> ProbeRun:
    """The run of the highest scan rate."""
    if not runs:
        raise ValueError("no run was measured")
    return max(runs, key=lambda r: r.rows_per_s or 0.0)


def differences(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[str]:
    """The top-level keys whose values differ (or that only one side has), sorted."""
    return sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))


@dataclass(frozen=True)
class ReportBench:
    """The ``report`` section."""

    orders: int
    parked: int
    reused: bool
    fill_seconds: float | None
    rounds: Sequence[ScanRound]
    spark: ProbeRun | None
    spark_error: str | None
    figures_differ: Sequence[str] | None
    """Figures that differ between the engines (empty: all equal); ``None``: not compared."""

    @property
    def median(self) -> ScanRound:
        return median_round(self.rounds)

    @property
    def best_bare(self) -> ProbeRun:
        return best([r.bare for r in self.rounds])

    @property
    def best_embedded(self) -> ProbeRun:
        return best([r.embedded for r in self.rounds])

    @property
    def best_ratio(self) -> float | None:
        """Best embedded scan against best bare scan (possibly of different rounds)."""
        return ratio_of(self.best_embedded.rows_per_s, self.best_bare.rows_per_s)

    def as_json(self) -> JsonObject:
        median = self.median
        return {
            "orders": self.orders,
            "parked": self.parked,
            "reused_table": self.reused,
            "fill_seconds": self.fill_seconds,
            "ratio": median.ratio,
            "median_round": median.number,
            "ratio_target": RATIO_TARGET,
            "best_ratio": self.best_ratio,
            "rounds": [r.as_json() for r in self.rounds],
            "spark": None if self.spark is None else self.spark.as_json(),
            "spark_error": self.spark_error,
            "figures_equal": None if self.figures_differ is None else not self.figures_differ,
            "figures_differ": None if self.figures_differ is None else list(self.figures_differ),
        }
