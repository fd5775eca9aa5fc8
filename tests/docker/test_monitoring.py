"""``docker compose --profile monitoring up`` under a stream: the Compose Prometheus scrapes every
replica of every service, loads the rules, and has data for every query of the Grafana
dashboard and for every rule of the live set.

The method. A panel's query is sent as it is (``/api/v1/query``) and must return at least one
sample. An alert's expression normally returns nothing while the alert does not fire, so asking
for it proves nothing; instead the live alerts are written as a recorded series compared with a
threshold (``job_instance:ecom_ready:min{...} == 0``), or as ``absent(SELECTOR)``, and what is
asked is the recorded series, or the SELECTOR (``tests/monitoring_files.py``; a unit test holds
every live alert to these forms). Each recording rule's own expression is asked too. All of it
must have data while the producer streams: data the services export about real work, with
malformed messages in the stream so that dead letters are counted. The rules on Cloud
Monitoring's Pub/Sub metrics (``GCP_RULE_FILES``) are loaded but cannot have data here, as the
emulator has no Cloud Monitoring: promtool tests them (``tests/unit/deploy/test_prometheus.py``).

Grafana's image cannot be had where no registry answers, so it is not started here; its
provisioning is checked without it.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.docker.compose import Compose, docker_overrides, free_port, healthy
from tests.monitoring_files import (
    GCP_RULE_FILES,
    LIVE_RULE_FILES,
    dashboard_queries,
    live_rule_queries,
    rules,
)
from tests.polling import within_blocking

# An endless stream (0 orders: until stopped) at a pace the two cores keep up with, with
# payments first, duplicates and malformed messages; the producer is scraped while it runs.
STREAM = {
    "ECOM_PRODUCER__ORDERS": "0",
    "ECOM_PRODUCER__RATE": "30",
    "ECOM_PRODUCER__PAYMENTS_FIRST": "0.3",
    "ECOM_PRODUCER__DUPLICATES": "0.05",
    "ECOM_PRODUCER__MALFORMED": "0.02",
}
PAYMENT_CONSUMERS = 2
TARGETS = {
    "prometheus": 1,
    "order-consumer": 1,
    "payment-consumer": PAYMENT_CONSUMERS,
    "dlq-worker": 1,
    "producer": 1,
}
# The services with a healthcheck (the producer has none: it is a job).
HEALTHY = {name: count for name, count in TARGETS.items() if name != "producer"}
PROMETHEUS_PORT = 9090  # the container port compose.yaml publishes
DATA_TIMEOUT = 300  # the 5-minute windows need two scrapes; the DLQ worker a pass

pytestmark = pytest.mark.timeout(2400)


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compose]:
    images = docker_overrides(tmp_path_factory.mktemp("docker") / "images.env")
    project = Compose(
        project=f"ecom-mon-{os.getpid()}",
        images=images,
        variables={
            "COMPOSE_PROFILES": "monitoring",
            "ECOM_REPORT_PORT": str(free_port()),
            "ECOM_PROMETHEUS_PORT": str(free_port()),
        },
    )
    try:
        yield project
    finally:
        project.tear_down()


class Prometheus:
    """The HTTP API of the project's Prometheus, on the host port Compose published."""

    def __init__(self, address: str) -> None:
        self.base = f"http://{address}"

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=30) as reply:
            body = json.loads(reply.read().decode())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=promql)
        result: list[dict[str, Any]] = data["result"]
        return result


def targets_up(prometheus: Prometheus) -> bool:
    """Every expected target found (each replica once) and scraped successfully."""
    active = prometheus.get("/api/v1/targets", state="active")["activeTargets"]
    counts: dict[str, int] = {}
    for target in active:
        if target["health"] == "up":
            job = target["labels"]["job"]
            counts[job] = counts.get(job, 0) + 1
    return counts == TARGETS and len(active) == sum(TARGETS.values())


def test_prometheus_has_data_for_every_dashboard_query_and_rule(compose: Compose) -> None:
    started = time.monotonic()
    compose.run(
        "up", "--detach", "--build", "--scale", f"payment-consumer={PAYMENT_CONSUMERS}",
        env=STREAM, timeout=1800,
    )  # fmt: skip
    for service, count in HEALTHY.items():
        compose.wait_until(
            f"{count} healthy {service}", lambda s=service, n=count: healthy(compose, s, n), 240
        )
    prometheus = Prometheus(compose.published("prometheus", PROMETHEUS_PORT))
    compose.wait_until(f"targets {TARGETS} all up", lambda: targets_up(prometheus), 120)
    print(f"stack up and every target scraped after {time.monotonic() - started:.0f} s")

    queries = {**dashboard_queries(), **live_rule_queries()}
    empty: list[str] = list(queries)

    def all_have_data() -> bool:
        empty[:] = [label for label in empty if not prometheus.query(queries[label])]
        return not empty

    if not within_blocking(all_have_data, DATA_TIMEOUT, every=5.0):
        missing = "; ".join(f"{label}: {queries[label]}" for label in empty)
        pytest.fail(f"no data within {DATA_TIMEOUT} s for: {missing}")
    print(f"{len(queries)} queries had data after {time.monotonic() - started:.0f} s")
    for label, query in queries.items():
        print(f"  {label}: {query}")

    groups = prometheus.get("/api/v1/rules")["groups"]
    loaded = {group["name"]: group for group in groups}
    for path in (*LIVE_RULE_FILES, *GCP_RULE_FILES):
        for rule in rules(path):
            names = {r["name"] for r in loaded[rule.group]["rules"]}
            assert rule.name in names, (path.name, rule.name)
    for group in groups:
        for rule in group["rules"]:
            assert rule["health"] == "ok", (group["name"], rule["name"], rule.get("lastError"))

    firing = [a for a in prometheus.get("/api/v1/alerts")["alerts"] if a["state"] == "firing"]
    assert firing == [], "a healthy pipeline raises no alert"
