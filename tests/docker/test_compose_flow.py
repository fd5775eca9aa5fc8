"""``docker compose up`` of the real compose.yaml on a real engine, as a user runs it.

Only image names are given (stand-ins where no registry answers). Two streams with payments
first, duplicates, re-emitted orders and malformed messages: the first with one consumer of
each kind, the second after ``--scale order-consumer=2 --scale payment-consumer=3``; after each,
the pipeline's own ``ecom-verify`` checks the tables against the producer's manifest, and the
report's page, on its published host port, must count the orders stored so far. The consumers,
the worker and the report must turn healthy (their images' healthcheck asks /readyz), and the
consumers count what they did on /metrics. Then every container must stop within its grace
period.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compose_files import OVERRIDE_FILES, ROOT
from tests.docker.compose import (
    Compose,
    dead_lettered,
    docker_overrides,
    free_port,
    healthy,
    verify,
)

ORDERS_PER_STREAM = 1500
STREAM = {
    "ECOM_PRODUCER__ORDERS": str(ORDERS_PER_STREAM),
    "ECOM_PRODUCER__PAYMENTS_FIRST": "0.3",
    "ECOM_PRODUCER__DUPLICATES": "0.05",
    "ECOM_PRODUCER__REEMITS": "0.1",
    "ECOM_PRODUCER__MALFORMED": "0.02",
}
PROJECT_SERVICES = ("order-consumer", "payment-consumer", "dlq-worker", "report")
REPORT_PORT = 8000  # the container port the report serves on and compose.yaml publishes
REPORT_REFRESH = 30  # compose.yaml's --refresh: the figures are at most this old
JVM_SERVICES = ("cassandra", "pubsub-emulator")
SIGTERM_EXIT = 143  # a JVM's exit status after its shutdown hooks ran on SIGTERM
SIGKILL_EXIT = 137  # what Docker's kill after the grace period leaves

pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return docker_overrides(tmp_path_factory.mktemp("docker") / "images.env")


@pytest.fixture(scope="module")
def compose(images: dict[str, str]) -> Iterator[Compose]:
    project = Compose(
        project=f"ecom-test-{os.getpid()}",
        images=images,
        variables={"ECOM_REPORT_PORT": str(free_port())},
    )
    try:
        yield project
    finally:
        project.tear_down()


def scraped(compose: Compose, service: str, metric: str) -> float:
    """The sum of a metric's samples, read from the service's own /metrics inside its container."""
    script = (
        "import urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1:8000/metrics', timeout=5).read().decode())"
    )
    text = compose.run("exec", "-T", service, "python", "-c", script, timeout=60).stdout
    samples = [line.rsplit(" ", 1) for line in text.splitlines() if line.startswith(metric)]
    assert samples, f"{metric} not served by {service}"
    return sum(float(value) for _, value in samples)


def fetched(url: str) -> tuple[str, str]:
    """GET ``url``: its content type and body (an HTTP error fails the test)."""
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.headers.get_content_type(), reply.read().decode()


def report_shows(compose: Compose, orders: int) -> dict[str, Any]:
    """The report's figures, once they count ``orders`` (within one refresh), read from the host
    port Compose published; and the page served there."""
    address = compose.published("report", REPORT_PORT)
    assert address.startswith("127.0.0.1:"), address
    figures: dict[str, Any] = {}

    def counted() -> bool:
        kind, body = fetched(f"http://{address}/report.json")
        assert kind == "application/json", kind
        figures.update(json.loads(body))
        return bool(figures["orders"] == orders)

    compose.wait_until(f"the report counts {orders} orders", counted, REPORT_REFRESH + 60)
    kind, page = fetched(f"http://{address}/")
    assert kind == "text/html", kind
    assert "Store report" in page
    return figures


def first_stream(compose: Compose) -> dict[str, Any]:
    compose.run("up", "--detach", "--build", env=STREAM, timeout=1800)
    for service in PROJECT_SERVICES:
        compose.wait_until(f"{service} is healthy", lambda s=service: healthy(compose, s, 1), 180)

    def producer_done() -> bool:
        return all(c["State"] == "exited" for c in compose.containers("producer"))

    compose.wait_until("the producer has sent its stream", producer_done, timeout=300)
    assert [c["ExitCode"] for c in compose.containers("producer")] == [0]
    return verify(compose)


def second_stream_scaled(compose: Compose) -> dict[str, Any]:
    compose.run(
        "up", "--detach", "--scale", "order-consumer=2", "--scale", "payment-consumer=3",
        "order-consumer", "payment-consumer",
        timeout=600,
    )  # fmt: skip
    compose.wait_until(
        "2 healthy order consumers", lambda: healthy(compose, "order-consumer", 2), 180
    )
    compose.wait_until(
        "3 healthy payment consumers", lambda: healthy(compose, "payment-consumer", 3), 180
    )
    compose.run("run", "--rm", "--no-deps", "producer", env=STREAM, timeout=300)
    return verify(compose)


def stop_everything(compose: Compose) -> tuple[float, list[dict[str, Any]]]:
    started = time.monotonic()
    compose.run("stop", timeout=600)
    return time.monotonic() - started, compose.containers()


def test_compose_up_scale_verify_and_stop(compose: Compose) -> None:
    first = first_stream(compose)
    assert first["totals"]["orders"] == ORDERS_PER_STREAM
    report_shows(compose, first["totals"]["orders"])
    assert first["totals"]["malformed"] > 0
    assert first["totals"]["payments_parked"] > 0
    # Orphan payments (their order never comes) stay parked. How a payment that came first was
    # joined depends on timing (the payment consumer looks for the order again after parking).
    assert first["observed"]["still_parked"] == first["totals"]["payments_parked"]
    malformed = first["totals"]["malformed"]
    assert len(dead_lettered(compose, malformed)) == malformed
    assert scraped(compose, "order-consumer", "ecom_messages_acked_total") >= ORDERS_PER_STREAM
    assert scraped(compose, "payment-consumer", "ecom_payments_parked_total") > 0

    second = second_stream_scaled(compose)
    assert second["totals"]["orders"] == 2 * ORDERS_PER_STREAM
    report_shows(compose, second["totals"]["orders"])
    malformed = second["totals"]["malformed"] - malformed
    assert len(dead_lettered(compose, malformed)) == malformed

    seconds, containers = stop_everything(compose)
    print(f"compose stop took {seconds:.1f} s")
    codes = {c["Name"]: (c["Service"], c["State"], c["ExitCode"]) for c in containers}
    assert all(state == "exited" for _, state, _ in codes.values()), codes
    for service, _, code in codes.values():
        if service in JVM_SERVICES:
            assert code in (0, SIGTERM_EXIT), codes
        else:
            assert code == 0, codes
    assert SIGKILL_EXIT not in {code for _, _, code in codes.values()}


def test_gcp_mode_is_accepted_by_compose(images: dict[str, str]) -> None:
    gcp = Compose(
        project=f"ecom-gcp-{os.getpid()}",
        images=images,
        files=(ROOT / "compose.yaml", *OVERRIDE_FILES),
    )
    credentials = Path(__file__)  # any readable file: the secret is only named, never read here
    env = {"ECOM_PUBSUB__PROJECT_ID": "my-project", "GCP_CREDENTIALS_FILE": str(credentials)}
    config = json.loads(gcp.run("config", "--format", "json", env=env).stdout)
    services = config["services"]
    assert "pubsub-emulator" not in services
    consumer = services["payment-consumer"]
    assert consumer["environment"]["PUBSUB_EMULATOR_HOST"] == ""
    assert consumer["environment"]["ECOM_PUBSUB__PROJECT_ID"] == "my-project"
    assert set(consumer["depends_on"]) == {"cassandra-init"}
    refused = gcp.run("config", "--quiet", check=False)
    assert refused.returncode != 0
    assert "ECOM_PUBSUB__PROJECT_ID" in refused.stderr
