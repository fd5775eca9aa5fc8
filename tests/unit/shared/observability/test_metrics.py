"""The metrics as Prometheus reads them: a histogram's cumulative buckets, count and sum.

Each service's metric hooks are tested with the service (the consumer loop, the gate, the
store ports, the handlers, the DLQ worker, the producer); :func:`value` and
:func:`reported_up` read what they report.
"""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from ecom_shared.observability.health import HealthState
from ecom_shared.observability.metrics import StoreMetrics


def value(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    found = registry.get_sample_value(name, labels or {})
    return 0.0 if found is None else found


def reported_up(health: HealthState, dependency: str) -> bool:
    """What ``/readyz`` says of ``dependency``."""
    return bool(health.readiness()[1]["checks"][dependency]["ok"])


def test_the_loop_histogram_exposes_cumulative_le_buckets_count_and_sum() -> None:
    registry = CollectorRegistry()
    series = StoreMetrics(registry).seconds.labels("set_payment")
    for seconds in (0.0004, 0.0005, 0.003, 12.0):
        series.observe(seconds)
    name, op = "ecom_cassandra_request_duration_seconds", {"operation": "set_payment"}
    assert value(registry, f"{name}_bucket", {**op, "le": "0.0005"}) == 2  # le is inclusive
    assert value(registry, f"{name}_bucket", {**op, "le": "0.002"}) == 2
    assert value(registry, f"{name}_bucket", {**op, "le": "0.005"}) == 3
    assert value(registry, f"{name}_bucket", {**op, "le": "5.0"}) == 3
    assert value(registry, f"{name}_bucket", {**op, "le": "+Inf"}) == 4
    assert value(registry, f"{name}_count", op) == 4
    assert value(registry, f"{name}_sum", op) == pytest.approx(12.0039)
    text = generate_latest(registry).decode()
    assert f'{name}_bucket{{le="0.001",operation="set_payment"}} 2.0' in text
    assert f"# TYPE {name} histogram" in text
