"""Fault scenario 9: a three-node Cassandra cluster in Compose (``compose.cluster.yaml``).

The keyspace has three replicas and every request runs at ``LOCAL_QUORUM``. A stream with
payments first, duplicates, re-emitted orders and malformed messages runs at a modest rate
while nodes are killed (SIGKILL, no drain):

1. one node (the first seed and first contact point) is killed: the pipeline keeps acking
   while it is away; then it is started again;
2. two nodes are killed, so no quorum is left: every consumer stops acking and stops handling
   (no message is retried while the outage lasts), ``/readyz`` stays 503 on both consumers and
   the DLQ worker, and nothing healthy reaches the dead-letter topic;
3. one of them is started again: the consumers resume by themselves, the stream finishes,
   and ``ecom-verify`` finds every order and payment where it belongs.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.compose_files import ROOT
from tests.docker.compose import (
    Compose,
    dead_lettered,
    docker_overrides,
    healthy,
    running,
    verify,
)

FILES = (ROOT / "compose.yaml", ROOT / "compose.cluster.yaml")
NODES = ("cassandra", "cassandra-2", "cassandra-3")
CONSUMERS = ("order-consumer", "payment-consumer")
LONG_RUNNING = (*CONSUMERS, "dlq-worker")
ORDERS = 2500
STREAM = {
    "ECOM_PRODUCER__ORDERS": str(ORDERS),
    "ECOM_PRODUCER__RATE": "20",  # messages per second: the stream outlasts the faults
    "ECOM_PRODUCER__PAYMENTS_FIRST": "0.3",
    "ECOM_PRODUCER__DUPLICATES": "0.05",
    "ECOM_PRODUCER__REEMITS": "0.1",
    "ECOM_PRODUCER__MALFORMED": "0.02",
}
HTTP_PORT = 8000  # the services' /metrics and /readyz, inside their containers
OUTAGE_SAMPLES = 8  # looks at the consumers while no quorum is left ...
OUTAGE_SAMPLE_SECONDS = 4.0  # ... this far apart: longer than their first backoff steps
UNAVAILABLE = 503

pytestmark = pytest.mark.timeout(2400)


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    marks: list[str] = field(default_factory=list)

    def mark(self, what: str) -> None:
        line = f"{time.monotonic() - self.started:7.1f} s  {what}"
        self.marks.append(line)
        print(line, flush=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compose]:
    images = docker_overrides(tmp_path_factory.mktemp("docker") / "images.env")
    project = Compose(project=f"ecom-cluster-{os.getpid()}", images=images, files=FILES)
    try:
        yield project
    finally:
        project.tear_down(tail=30, shown=30_000)


_addresses: dict[tuple[str, str], str] = {}


def http_get(compose: Compose, service: str, path: str) -> tuple[int, str]:
    """GET from the service's HTTP port (its container is never restarted here, so its
    address is looked up once)."""
    key = (compose.project, service)
    if key not in _addresses:
        _addresses[key] = compose.address(service)
    url = f"http://{_addresses[key]}:{HTTP_PORT}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series.partition("{")[0] == name and all(
            f'{key}="{wanted}"' in series for key, wanted in labels.items()
        ):
            total += float(value)
    return total


@dataclass(frozen=True)
class Consumers:
    """What both consumers report at one moment."""

    acked: float
    retried: float
    in_flight: float
    ready: tuple[bool, ...]
    cassandra_up: tuple[float, ...]

    @property
    def all_stopped(self) -> bool:
        return not any(self.ready) and not any(self.cassandra_up) and self.in_flight == 0


def consumers(compose: Compose) -> Consumers:
    acked = retried = in_flight = 0.0
    ready, up = [], []
    for service in CONSUMERS:
        _, text = http_get(compose, service, "/metrics")
        acked += metric(text, "ecom_messages_acked_total")
        retried += metric(text, "ecom_messages_retried_total")
        in_flight += metric(text, "ecom_messages_in_flight")
        up.append(metric(text, "ecom_dependency_up", dependency="cassandra"))
        ready.append(http_get(compose, service, "/readyz")[0] == 200)
    return Consumers(acked, retried, in_flight, tuple(ready), tuple(up))


def node_states(compose: Compose) -> dict[str, str]:
    return {c["Service"]: c["State"] for c in compose.containers() if c["Service"] in NODES}


def kill(compose: Compose, *nodes: str) -> None:
    compose.run("kill", "--signal", "SIGKILL", *nodes)
    compose.wait_until(
        f"{', '.join(nodes)} stopped",
        lambda: all(node_states(compose)[node] != "running" for node in nodes),
        60,
    )


def restart_count(container: str) -> int:
    inspected = subprocess.run(
        ["docker", "inspect", "--format", "{{.RestartCount}}", container],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return int(inspected.stdout.strip())


def bring_back(compose: Compose, node: str) -> None:
    """Start the node's container again: only it (``compose start`` would start the nodes it
    waits for, too). A node that exits on start-up fails at once (Docker would restart it)."""
    (container,) = [c["Name"] for c in compose.containers(node)]
    restarts = restart_count(container)
    subprocess.run(["docker", "start", container], check=True, capture_output=True, timeout=120)

    def answers() -> bool:
        if restart_count(container) != restarts:
            logs = compose.run("logs", "--no-color", "--tail", "60", node, check=False).stdout
            raise AssertionError(f"{node} exited while starting again:\n{logs[-6000:]}")
        return healthy(compose, node, 1)

    compose.wait_until(f"{node} answers CQL", answers, 900)


def start_cluster(compose: Compose) -> None:
    services = [*NODES, "pubsub-emulator", *LONG_RUNNING]
    compose.run("up", "--detach", "--build", *services, timeout=1800)
    for service in LONG_RUNNING:
        compose.wait_until(f"{service} is healthy", lambda s=service: healthy(compose, s, 1), 180)
    keyspace = compose.run(
        "exec", "-T", "cassandra", "cqlsh", "-e",
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'ecom_store'",
        timeout=120,
    ).stdout  # fmt: skip
    assert "NetworkTopologyStrategy" in keyspace, keyspace
    assert "'dc1': '3'" in keyspace, keyspace
    ring = compose.run("exec", "-T", "cassandra", "nodetool", "status", timeout=120).stdout
    assert sum(line.startswith("UN ") for line in ring.splitlines()) == len(NODES), ring


def one_node_down(compose: Compose, timeline: Timeline) -> None:
    compose.wait_until("rows arrive", lambda: consumers(compose).acked >= 300, 300)
    kill(compose, "cassandra")
    timeline.mark("killed cassandra (seed, first contact point)")
    before = consumers(compose).acked
    compose.wait_until(
        "500 more messages are acked with one node down",
        lambda: consumers(compose).acked >= before + 500,
        300,
    )
    assert node_states(compose)["cassandra"] != "running"  # acked without it
    timeline.mark(f"acked {consumers(compose).acked - before:.0f} with one node down")
    bring_back(compose, "cassandra")
    timeline.mark("cassandra back and answering")


def quorum_lost(compose: Compose, timeline: Timeline) -> Consumers:
    """Kill two nodes; every consumer must stop, stay stopped and unready, and burn nothing."""
    assert running(compose, "producer"), "the stream ended before the two-node outage"
    kill(compose, "cassandra-2", "cassandra-3")
    timeline.mark("killed cassandra-2 and cassandra-3: no quorum left")
    compose.wait_until(
        "both consumers stopped and unready",
        lambda: consumers(compose).all_stopped,
        180,
    )
    compose.wait_until(
        "the DLQ worker unready",
        lambda: http_get(compose, "dlq-worker", "/readyz")[0] == UNAVAILABLE,
        120,
    )
    stopped = consumers(compose)
    timeline.mark(f"consumers stopped: acked {stopped.acked:.0f}, retried {stopped.retried:.0f}")
    for _ in range(OUTAGE_SAMPLES):
        time.sleep(OUTAGE_SAMPLE_SECONDS)  # pacing the looks, not waiting for a condition
        now = consumers(compose)
        assert now.all_stopped, now
        assert (now.acked, now.retried) == (stopped.acked, stopped.retried), (stopped, now)
    assert running(compose, "producer"), "the stream must still be flowing during the outage"
    timeline.mark(f"still stopped after {OUTAGE_SAMPLES * OUTAGE_SAMPLE_SECONDS:.0f} s")
    return stopped


def recovery(compose: Compose, stopped: Consumers, timeline: Timeline) -> None:
    bring_back(compose, "cassandra-3")
    timeline.mark("cassandra-3 back: quorum again")
    compose.wait_until(
        "the consumers resume",
        lambda: all(consumers(compose).ready) and consumers(compose).acked > stopped.acked,
        600,
    )
    timeline.mark("consumers resumed")

    def producer_done() -> bool:
        return all(c["State"] == "exited" for c in compose.containers("producer"))

    compose.wait_until("the producer has sent its stream", producer_done, 600)
    assert [c["ExitCode"] for c in compose.containers("producer")] == [0]
    timeline.mark("producer done")


def summary(report: dict[str, Any], timeline: Timeline) -> str:
    counts = report["counts"]
    lost = counts["orders_missing"] + counts["payments_missing"] + counts["parked_missing"]
    wrong = counts["orders_wrong"] + counts["payments_wrong"] + counts["parked_but_order_exists"]
    duplicated = counts["payments_unexplained"] + counts["rows_unexplained"]
    return (
        f"scenario 9 (3-node cluster): totals {report['totals']}, faults: SIGKILL 1 node + "
        f"restart, SIGKILL 2 nodes + restart 1; lost {lost}, wrong {wrong}, duplicated "
        f"{duplicated}; {time.monotonic() - timeline.started:.0f} s"
    )


def test_cluster_rides_out_one_node_and_waits_out_two(cluster: Compose) -> None:
    timeline = Timeline()
    start_cluster(cluster)
    timeline.mark("cluster of 3 up (RF 3), services healthy")
    cluster.run("up", "--detach", "--no-deps", "producer", env=STREAM)
    timeline.mark("producer started")
    one_node_down(cluster, timeline)
    stopped = quorum_lost(cluster, timeline)
    recovery(cluster, stopped, timeline)
    report = verify(cluster)
    final = consumers(cluster)
    timeline.mark(f"ecom-verify passed; acked {final.acked:.0f}, retried {final.retried:.0f}")
    assert report["totals"]["orders"] == ORDERS
    assert not any(report["counts"].values()), report
    malformed = report["totals"]["malformed"]
    assert malformed > 0
    assert len(dead_lettered(cluster, malformed)) == malformed
    print(summary(report, timeline))
