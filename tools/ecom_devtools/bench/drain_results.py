"""The drains' results: one drain, the ceilings, product drains paired with their round's
ceiling and summarised, the scale-out pairs and the profiled drains (see
:mod:`ecom_devtools.bench.drains`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ecom_devtools.bench.results import JsonObject

Timeline = list[tuple[float, float]]
"""Rows written per second over time: (seconds since the first write, rows/s)."""


@dataclass(frozen=True)
class DrainResult:
    """One drain: rows per second from the first write to the last, and CPU use meanwhile."""

    published: int
    count: int
    seconds: float
    rate: float
    processes: int
    cpu_cores: Mapping[str, float]
    consumer_cpu_us_per_message: float
    exit_codes: Mapping[str, int | None]
    timeline: Timeline = field(repr=False)

    def as_json(self) -> JsonObject:
        return {
            "published": self.published,
            "count": self.count,
            "seconds": self.seconds,
            "rate": self.rate,
            "processes": self.processes,
            "cpu_cores": self.cpu_cores,
            "consumer_cpu_us_per_message": self.consumer_cpu_us_per_message,
            "exit_codes": self.exit_codes,
            "timeline": self.timeline,
        }


@dataclass(frozen=True)
class WarmUp:
    """The throwaway drains before anything is measured: rate and CPU, by kind."""

    drains: Mapping[str, DrainResult] = field(default_factory=dict)

    def as_json(self) -> JsonObject:
        return {
            kind: {"rate": drain.rate, "cpu_cores": drain.cpu_cores}
            for kind, drain in self.drains.items()
        }


@dataclass(frozen=True)
class Ceiling:
    """Every sample of one minimal consumer; its rate is the best of them."""

    samples: tuple[DrainResult, ...]
    pullers: int

    @property
    def rate(self) -> float:
        return max(sample.rate for sample in self.samples)

    @property
    def cpu_us_per_message(self) -> float:
        """The least consumer CPU per message of any sample."""
        return min(sample.consumer_cpu_us_per_message for sample in self.samples)

    def as_json(self) -> JsonObject:
        return {
            "samples": [sample.as_json() for sample in self.samples],
            "rate": self.rate,
            "pullers": self.pullers,
        }


@dataclass(frozen=True)
class Ceilings:
    """The minimal consumers' samples, by kind (``orders``, ``payments``)."""

    kinds: Mapping[str, Ceiling] = field(default_factory=dict)

    def rate(self, kind: str) -> float:
        """The best rate of ``kind``'s minimal consumer (0 if it was not measured)."""
        measured = self.kinds.get(kind)
        return measured.rate if measured else 0.0

    def with_sample(self, kind: str, sample: DrainResult, pullers: int) -> Ceilings:
        known = self.kinds.get(kind)
        samples = (*known.samples, sample) if known else (sample,)
        return Ceilings({**self.kinds, kind: Ceiling(samples, pullers)})

    def as_json(self) -> JsonObject:
        return {kind: ceiling.as_json() for kind, ceiling in self.kinds.items()}


@dataclass(frozen=True)
class PairedDrain:
    """A product drain with its round's ceiling: rate ratio and CPU-per-message ratio."""

    drain: DrainResult
    round: int
    ceiling_first: bool
    ceiling: float
    ratio: float | None
    ceiling_cpu_us_per_message: float
    cpu_ratio: float | None

    @property
    def rate(self) -> float:
        return self.drain.rate

    def as_json(self) -> JsonObject:
        return {
            **self.drain.as_json(),
            "round": self.round,
            "ceiling_first": self.ceiling_first,
            "ceiling": self.ceiling,
            "ratio": self.ratio,
            "ceiling_cpu_us_per_message": self.ceiling_cpu_us_per_message,
            "cpu_ratio": self.cpu_ratio,
        }

    def round_json(self) -> JsonObject:
        """The round as the summary lists it beside the median."""
        return {
            "round": self.round,
            "ceiling_first": self.ceiling_first,
            "rate": self.drain.rate,
            "ceiling": self.ceiling,
            "ratio": self.ratio,
            "consumer_cpu_us_per_message": self.drain.consumer_cpu_us_per_message,
            "ceiling_cpu_us_per_message": self.ceiling_cpu_us_per_message,
            "cpu_ratio": self.cpu_ratio,
        }


@dataclass(frozen=True)
class RoundsSummary:
    """The median round of a product drain, with every round's figures beside it."""

    median: PairedDrain
    rounds: tuple[PairedDrain, ...]
    ratio_range: tuple[float, float] | None

    def as_json(self) -> JsonObject:
        return {
            **self.median.as_json(),
            "median_of_rounds": len(self.rounds),
            "rounds": [paired.round_json() for paired in self.rounds],
            "ratio_range": None if self.ratio_range is None else list(self.ratio_range),
        }


@dataclass(frozen=True)
class PaymentDrain:
    """The payment consumer's drains: with every order present, and with none (all parked)."""

    orders_present: RoundsSummary
    orders_missing: RoundsSummary

    def as_json(self) -> JsonObject:
        return {
            "orders_present": self.orders_present.as_json(),
            "orders_missing": self.orders_missing.as_json(),
        }


@dataclass(frozen=True)
class AgainstCeiling:
    """A drain measured once (after every ceiling), against the best ceiling of the run."""

    drain: DrainResult
    ceiling: float
    ratio: float | None
    ceiling_cpu_us_per_message: float
    cpu_ratio: float | None

    def as_json(self) -> JsonObject:
        return {
            **self.drain.as_json(),
            "ceiling": self.ceiling,
            "ratio": self.ratio,
            "ceiling_cpu_us_per_message": self.ceiling_cpu_us_per_message,
            "cpu_ratio": self.cpu_ratio,
        }


@dataclass(frozen=True)
class ScalePair:
    one: AgainstCeiling
    two: AgainstCeiling
    speedup: float | None

    def as_json(self) -> JsonObject:
        return {"one": self.one.as_json(), "two": self.two.as_json(), "speedup": self.speedup}


@dataclass(frozen=True)
class ScaleOut:
    """One against two consumer processes, by kind."""

    kinds: Mapping[str, ScalePair]

    def as_json(self) -> JsonObject:
        return {kind: pair.as_json() for kind, pair in self.kinds.items()}


@dataclass(frozen=True)
class ProfileSummary:
    """Self and inclusive shares (%) of the busy samples, by function."""

    samples: int
    own: list[tuple[str, float]]
    inclusive: list[tuple[str, float]]

    def as_json(self) -> JsonObject:
        return {"samples": self.samples, "self": self.own, "inclusive": self.inclusive}


@dataclass(frozen=True)
class ProfiledDrain:
    rate_under_profiler: float
    summary: ProfileSummary

    def as_json(self) -> JsonObject:
        return {"rate_under_profiler": self.rate_under_profiler, **self.summary.as_json()}


@dataclass(frozen=True)
class Profiles:
    drains: Mapping[str, ProfiledDrain]

    def as_json(self) -> JsonObject:
        return {name: drain.as_json() for name, drain in self.drains.items()}
