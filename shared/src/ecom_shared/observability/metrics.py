"""Every Prometheus metric the pipeline exports, defined once, in groups a service picks from.

A service builds one registry (:func:`new_registry`) and registers only the groups it uses, so
an order consumer never exports a DLQ gauge that would read as "the DLQ is empty". The
``gcloud-aio`` client's own metrics (about its ``subscribe()`` helper, which we do not use)
live in the library's default registry and are deliberately not served.

Cost matters, as every message passes these hooks: the consumer loop counts per batch (``inc(n)``)
and labels are bound once, so the happy path pays only the store's latency histogram, which
is a lock-free one made for a single event loop (:class:`LoopHistogram`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from itertools import accumulate
from typing import Final

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
)
from prometheus_client.metrics_core import HistogramMetricFamily

CASSANDRA_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5.0)
"""0.5 ms to 5 s: from below a healthy single-row write up to the default request timeout."""

PASS_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def new_registry() -> CollectorRegistry:
    """A service's own registry, with the standard process, platform and GC collectors."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


class ConsumerMetrics:
    """The consumer loop's counters for one subscription (labels bound once)."""

    def __init__(self, registry: CollectorRegistry, subscription: str) -> None:
        labels = ["subscription"]
        self._subscription = subscription
        self.received = Counter(
            "ecom_messages_received", "Messages pulled", labels, registry=registry
        ).labels(subscription)
        self.acked = Counter(
            "ecom_messages_acked",
            "Messages acked (handled, or dead-lettered)",
            labels,
            registry=registry,
        ).labels(subscription)
        self.in_flight = Gauge(
            "ecom_messages_in_flight",
            "Messages pulled and not yet settled",
            labels,
            registry=registry,
        ).labels(subscription)
        self.in_flight_limit = Gauge(
            "ecom_in_flight_limit",
            "How many messages may be written at once now (lower for a while after Cassandra "
            "failed to answer)",
            labels,
            registry=registry,
        ).labels(subscription)
        self.pull_errors = Counter(
            "ecom_pull_errors", "Pull requests that failed", labels, registry=registry
        ).labels(subscription)
        self._dead_lettered = Counter(
            "ecom_messages_dead_lettered",
            "Messages sent to the dead-letter topic, by reason",
            [*labels, "reason"],
            registry=registry,
        )
        self._retried = Counter(
            "ecom_messages_retried",
            "Messages left for redelivery, by reason",
            [*labels, "reason"],
            registry=registry,
        )

    def dead_lettered(self, reason: str) -> None:
        self._dead_lettered.labels(self._subscription, reason).inc()

    def retried(self, reason: str) -> None:
        self._retried.labels(self._subscription, reason).inc()


class StoreMetrics:
    """Latency of every Cassandra request the services make, by operation."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.seconds = LoopHistogram(
            "ecom_cassandra_request_duration_seconds",
            "Cassandra request latency by operation, failed requests included",
            "operation",
            CASSANDRA_BUCKETS,
            registry,
        )


class LoopSeries:
    """One label value's buckets. ``observe`` is one bisect and two additions, no lock."""

    __slots__ = ("_bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self._bounds, seconds)] += 1
        self.total += seconds


class LoopHistogram:
    """A histogram with one label for code that runs on a single event loop, which is also
    where ``/metrics`` is rendered: no locks are needed. prometheus-client's ``Histogram`` locks
    twice per observation; on the store's hot path (one or two requests per message) this one
    is several times cheaper (``scripts/bench_metrics.py``). Not for use from other threads."""

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str,
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._bounds = tuple(sorted(buckets))
        self._series: dict[str, LoopSeries] = {}
        registry.register(self)

    def labels(self, value: str) -> LoopSeries:
        series = self._series.get(value)
        if series is None:
            series = self._series[value] = LoopSeries(self._bounds)
        return series

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation, labels=[self._label])]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=[self._label])
        edges = [*(repr(float(b)) for b in self._bounds), "+Inf"]
        for value, series in sorted(self._series.items()):
            cumulative = list(accumulate(series.counts))
            family.add_metric([value], list(zip(edges, cumulative, strict=True)), series.total)
        return [family]


class EventMetrics:
    """What the bodies a consumer reads carry beyond the fields the product knows."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.unknown_fields = Counter(
            "ecom_unknown_fields",
            "Fields of accepted messages that the product does not know (ignored), by name",
            ["event_type", "field"],
            registry=registry,
        )


class PaymentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.parked = Counter(
            "ecom_payments_parked",
            "Payments that found no order, stored in the DLQ table and announced",
            registry=registry,
        )


class DlqMetrics:
    """The DLQ worker's view of the table, updated after each pass."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.reconciled = Counter(
            "ecom_payments_reconciled", "Parked payments joined to their order", registry=registry
        )
        self.parked = Gauge(
            "ecom_dlq_parked_payments",
            "Payments left in the DLQ after the last pass",
            registry=registry,
        )
        self.stale = Gauge(
            "ecom_dlq_stale_payments",
            "Parked payments older than the worker's max age",
            registry=registry,
        )
        self.oldest_age = Gauge(
            "ecom_dlq_oldest_parked_age_seconds",
            "Age of the oldest payment still parked at the last pass (0 when none)",
            registry=registry,
        )
        self.pass_seconds = Histogram(
            "ecom_dlq_pass_duration_seconds",
            "Duration of one pass over the DLQ table",
            buckets=PASS_BUCKETS,
            registry=registry,
        )
        self.running = Gauge(
            "ecom_dlq_pass_running",
            "1 while a pass over the DLQ table runs, 0 between passes",
            registry=registry,
        )
        self.passes = Counter(
            "ecom_dlq_passes",
            "Passes over the DLQ table, by outcome (ok, failed)",
            ["outcome"],
            registry=registry,
        )
        self.unreadable = Counter(
            "ecom_dlq_rows_unreadable",
            "DLQ rows a pass could not use and skipped (each pass counts them again)",
            registry=registry,
        )


class ProducerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "ecom_messages_published",
            "Messages Pub/Sub accepted, by kind (orders, payments, duplicates, malformed)",
            ["kind"],
            registry=registry,
        )


class HealthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dependency_up = Gauge(
            "ecom_dependency_up",
            "1 while the service can reach the dependency, 0 while it cannot",
            ["dependency"],
            registry=registry,
        )
