"""No secret reaches a log line, a metric or ``/readyz``: errors are told by
:func:`~ecom_shared.error_text.describe_error`, never by their repr.

aiohttp's ``ClientResponseError`` holds its request: the repr shows the request headers
(``Authorization: Bearer ...``), the ``str`` the URL with its query. The tests raise such an
error, as gcloud-aio does for a refused request, at every place the services meet one, and
read the logs as production writes them (JSON on stdout), the metrics as Prometheus scrapes
them and the readiness bodies as ``/readyz`` serves them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import structlog
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import generate_latest
from yarl import URL

from ecom_producer.publish import PhasePublisher, Tally
from ecom_shared.error_text import clip, describe_error
from ecom_shared.errors import InvalidMessage
from ecom_shared.events import EventType
from ecom_shared.observability.health import HealthState, Telemetry
from ecom_shared.observability.logs import configure_logging, get_logger
from ecom_shared.observability.metrics import HealthMetrics, ProducerMetrics, new_registry
from ecom_shared.pubsub.client import OutgoingMessage, PubSubPublisher, ReceivedMessage
from ecom_shared.pubsub.deadletter import DeadLetters
from ecom_shared.runtime.consumer import UNREADY_AFTER_PULL_FAILURES, Consumer
from ecom_shared.settings import LogSettings
from tests.fakes import FakeSubscription, received
from tests.polling import eventually
from tests.unit.producer.test_publishing import planned
from tests.unit.shared.runtime.test_consumer import FAST, FAST_PACING

SECRET = "SECRET-b7e1"
URL_WITH_TOKEN = (
    f"https://pubsub.googleapis.com/v1/projects/p/topics/dead-letter:publish?access_token={SECRET}"
)


def refused_request() -> aiohttp.ClientResponseError:
    """What gcloud-aio raises when Pub/Sub refuses a request: it carries the request."""
    url = URL(URL_WITH_TOKEN)
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {SECRET}"}))
    request = aiohttp.RequestInfo(url, "POST", headers, url)
    return aiohttp.ClientResponseError(
        request, (), status=403, message="Forbidden", headers=headers
    )


def test_an_http_error_is_told_by_status_reason_and_url_without_query() -> None:
    told = describe_error(refused_request())
    assert told == (
        "ClientResponseError: 403 Forbidden "
        "(POST https://pubsub.googleapis.com/v1/projects/p/topics/dead-letter:publish)"
    )
    assert SECRET in repr(refused_request())  # what the code must never print


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(f"GET {URL_WITH_TOKEN} failed"),
        RuntimeError(f"header Authorization: Bearer {SECRET}"),
        ConnectionError(f"https://user:{SECRET}@example.com/x"),
        aiohttp.InvalidURL(URL_WITH_TOKEN),
    ],
)
def test_any_error_text_loses_url_queries_credentials_and_bearer_tokens(
    error: Exception,
) -> None:
    told = describe_error(error)
    assert SECRET not in told
    assert told.startswith(type(error).__name__)


def test_telling_an_error_never_raises_and_keeps_to_its_length() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError

    assert describe_error(Unprintable()) == "Unprintable"
    assert len(describe_error(ValueError("x" * 1000))) == 300
    assert clip("abcdef", 4) == "abc…"


class RecordedHealth(HealthState):
    """The health state, keeping every ``/readyz`` body it served while a dependency was down."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bodies: list[str] = []

    def down(self, dependency: str, reason: str) -> None:
        super().down(dependency, reason)
        self.bodies.append(json.dumps(self.readiness()[1]))


def production_logging() -> None:
    """The services' log set-up, writing to the stdout this test captures (so it is called in
    the test's body). Loggers are not cached, so no module keeps this set-up afterwards."""
    configure_logging(LogSettings(), service="test")
    structlog.configure(cache_logger_on_first_use=False)


class RefusingClient:
    """gcloud-aio's publisher client, as Pub/Sub answers it with a refusal."""

    async def publish(self, *args: object, **kwargs: object) -> dict[str, Any]:
        raise refused_request()


async def refusing_publisher(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> PubSubPublisher:
    publisher = PubSubPublisher(session, "p")
    monkeypatch.setattr(publisher, "_client", RefusingClient())
    return publisher


def assert_secret_nowhere(lines: list[str], registry: Any, health: RecordedHealth) -> None:
    assert lines
    assert health.bodies
    for text in [*lines, generate_latest(registry).decode(), *health.bodies]:
        assert SECRET not in text, text


@pytest.mark.usefixtures("restore_logging")
async def test_no_secret_from_failed_pulls_dead_letters_retries_or_acks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    production_logging()
    async with aiohttp.ClientSession() as session:
        publisher = await refusing_publisher(session, monkeypatch)

        async def handler(message: ReceivedMessage) -> None:
            if message.data == b"invalid":
                raise InvalidMessage("invalid_json", "not JSON")  # its dead letter is refused
            if message.data == b"announce":
                # A parked payment's announcement, refused: the message is retried.
                await publisher.publish("dlq-payments", [OutgoingMessage(b"{}")])

        registry = new_registry()
        health = RecordedHealth(metrics=HealthMetrics(registry))
        health.started()
        sub = FakeSubscription([received(b"invalid"), received(b"announce"), received(b"ok")])
        # Enough failed pulls for one of the two loops to fail as often as marks Pub/Sub down.
        failed_pulls = UNREADY_AFTER_PULL_FAILURES * FAST.pullers
        sub.error, sub.fail_pulls, sub.fail_acks = refused_request(), failed_pulls, 2
        consumer = Consumer(
            sub,
            handler,
            DeadLetters(publisher, "dead-letter"),
            FAST,
            ack_deadline_seconds=60,
            probe=_answers,
            telemetry=Telemetry(registry, health),
            pacing=FAST_PACING,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        await eventually(lambda: consumer.stats.acked == 1 and consumer.stats.retried == 2)
        stop.set()
        await asyncio.wait_for(task, 5)
    lines = capsys.readouterr().out.splitlines()
    events = {json.loads(line)["event"] for line in lines}
    assert {"pull.failed", "message.dead_letter_failed", "message.retry", "ack.failed"} <= events
    assert_secret_nowhere(lines, registry, health)
    reasons = [json.loads(body)["reason"] for body in health.bodies]
    failed = f"unreachable: pubsub: {UNREADY_AFTER_PULL_FAILURES} pulls failed"
    pulls = [r for r in reasons if r.startswith(failed)]
    dead = [r for r in reasons if r.startswith("unreachable: pubsub: dead-letter publish")]
    assert pulls, reasons
    assert dead, reasons
    assert all("403 Forbidden (POST https://" in r for r in pulls + dead)  # says what failed


@pytest.mark.usefixtures("restore_logging")
async def test_no_secret_from_the_producers_publish_retries(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    production_logging()
    registry = new_registry()
    health = RecordedHealth(metrics=HealthMetrics(registry))
    async with aiohttp.ClientSession() as session:
        phases = PhasePublisher(
            await refusing_publisher(session, monkeypatch),
            {EventType.ORDER: "orders"},
            None,
            Tally(),
            attempts=2,
            metrics=ProducerMetrics(registry),
            health=health,
        )
        with pytest.raises(ExceptionGroup) as failed:
            await phases.publish([planned(EventType.ORDER, 1)])
    # The producer then ends as every service does on an error: its traceback in one line.
    get_logger("test").critical("service.crashed", exc_info=failed.value)
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["event"] for line in lines] == [
        "health.dependency_down",
        "producer.publish_retry",
        "service.crashed",
    ]
    assert_secret_nowhere(lines, registry, health)


async def _answers() -> None:
    return None
