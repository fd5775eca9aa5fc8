"""Log lines: one JSON object per line; each failure names message, order and outcome; no
line per message on the happy path."""

from __future__ import annotations

import json

import pytest
import structlog

from ecom_shared.errors import InvalidMessage
from ecom_shared.observability.logs import configure_logging, get_logger
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.settings import LogSettings
from tests.fakes import received
from tests.polling import eventually
from tests.unit.shared.runtime.test_consumer import Harness, ok_handler
from tests.unit.shared.test_events import ORDER, body


async def test_failures_are_logged_with_message_id_order_id_and_outcome() -> None:
    async def refuse(message: ReceivedMessage) -> None:
        raise InvalidMessage("invalid_value", "quantity: must be positive")

    bad = received(body(ORDER, order_id=4242))
    h = Harness(refuse, [bad])
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        async with h.running():
            await eventually(lambda: h.sub.acked == [bad.ack_id])
    [line] = [entry for entry in logs if entry["event"] == "message.dead_lettered"]
    assert (line["message_id"], line["order_id"]) == (bad.message_id, 4242)
    assert (line["outcome"], line["reason"]) == ("dead_lettered", "invalid_value")


async def test_the_happy_path_logs_no_line_per_message() -> None:
    h = Harness(ok_handler, [received(b"{}") for _ in range(30)])
    with structlog.testing.capture_logs() as logs:
        async with h.running():
            await eventually(lambda: len(h.sub.acked) == 30)
    assert {entry["event"] for entry in logs} <= {"consumer.started", "consumer.stopped"}


@pytest.mark.usefixtures("restore_logging")
def test_a_failure_line_is_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    """The production renderer: one JSON object per line, context fields included."""
    configure_logging(LogSettings(), service="test")  # here, so it writes to capsys' stdout
    structlog.contextvars.bind_contextvars(message_id="m-1")
    get_logger("t").warning("message.retry", outcome="retry_later", order_id=5)
    [line] = capsys.readouterr().out.splitlines()
    parsed = json.loads(line)
    assert parsed["outcome"] == "retry_later"
    assert (parsed["message_id"], parsed["order_id"]) == ("m-1", 5)
    assert (parsed["service"], parsed["level"]) == ("test", "warning")
