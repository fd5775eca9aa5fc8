"""``ecom-redrive`` on the real emulator and Cassandra, run as a process as an operator runs it:
orders refused by an older rule are redriven after the rule changed and land in the table; a
dry run changes nothing; what a run does not select stays; a run killed midway loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ecom_devtools.local.drain import drain_now
from ecom_order_consumer.handler import OrderHandler
from ecom_shared.errors import InvalidMessage
from ecom_shared.pubsub.client import FIRST_PUBLISHED, OutgoingMessage, ReceivedMessage
from ecom_shared.runtime.resources import Resources
from ecom_shared.settings import ServiceSettings
from tests.infra import InfraUnderTest
from tests.integration.conftest import RunConsumer, acked
from tests.integration.test_pipeline import ORDER, drain, row
from tests.polling import eventually
from tests.unit.shared.test_events import body

KNOWN_FIELDS = frozenset(ORDER)
REDRIVE_TIMEOUT = 120


async def ecom_redrive(
    infra: InfraUnderTest, settings: ServiceSettings, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """``ecom-redrive ... --json`` as a user runs it: its exit code and its report."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ecom_redrive.cli", *args, "--json"),
        env={**os.environ, **infra.environment(settings), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), REDRIVE_TIMEOUT)
    assert process.returncode is not None
    lines = output.decode(errors="replace").splitlines()
    reports = [json.loads(line) for line in lines if line.startswith('{"subscription"')]
    assert reports, "\n".join(lines[-20:])
    return process.returncode, reports[-1]


def older_rule(current: OrderHandler) -> Any:
    """The order consumer of an older release, which refused fields it did not know."""

    async def handle(message: ReceivedMessage) -> None:
        try:
            fields = set(json.loads(message.data or b""))
        except ValueError:
            fields = set()  # today's rules refuse it too
        unknown = fields - KNOWN_FIELDS
        if unknown:
            raise InvalidMessage("invalid_value", f"unknown field {sorted(unknown)[0]}")
        await current(message)

    return handle


async def test_orders_refused_by_an_older_rule_are_redriven_and_land(
    infra: InfraUnderTest,
    settings: ServiceSettings,
    resources: Resources,
    run_consumer: RunConsumer,
) -> None:
    p = settings.pubsub
    handler = OrderHandler(resources.orders, resources.dlq)
    refused = [
        OutgoingMessage(body(ORDER, order_id=1, gift_wrap=True), {"event_type": "order"}),
        OutgoingMessage(body(ORDER, order_id=2, loyalty_tier="gold"), {}),
        OutgoingMessage(b'{"order_id": 3, ', {}),  # refused by every rule
    ]
    accepted = OutgoingMessage(body(ORDER, order_id=4), {})
    await resources.publisher.publish(p.orders_topic, [*refused, accepted])
    async with run_consumer(p.orders_subscription, older_rule(handler)) as consumer:
        await eventually(lambda: acked(consumer, 4))
        assert consumer.stats.dead_lettered == len(refused)
    assert await row(resources, 1) is None

    # A dry run lists them and changes nothing: twice the same counts.
    for _ in range(2):
        code, report = await ecom_redrive(infra, settings, "--dry-run")
        assert code == 0
        assert report["totals"] == {
            "waiting": 3,
            "selected": 3,
            "republished": 0,
            "acked": 0,
            "left": 3,
            "failed": 0,
            "not_redrivable": 0,
        }
        assert {(g["reason"], g["source"], g["age"], g["waiting"]) for g in report["groups"]} == {
            ("invalid_value", p.orders_subscription, "<1h", 2),
            ("invalid_json", p.orders_subscription, "<1h", 1),
        }

    code, report = await ecom_redrive(infra, settings, "--reason", "invalid_value")
    assert code == 0, report
    assert report["totals"] == {
        "waiting": 3,
        "selected": 2,
        "republished": 2,
        "acked": 2,
        "left": 1,
        "failed": 0,
        "not_redrivable": 0,
    }

    # The rule has changed: today's consumer stores what the older one refused.
    async with run_consumer(p.orders_subscription, handler) as consumer:
        await eventually(lambda: acked(consumer, 2))
        assert consumer.stats.dead_lettered == 0
    for order_id in (1, 2):
        stored = await row(resources, order_id)
        assert stored is not None
        assert stored["item"] == ORDER["item"]
    # What was not selected stays, byte for byte, with its reason.
    [left] = await drain(resources, p.dead_letter_subscription, 1)
    assert left.data == refused[2].data
    assert left.attributes["error_reason"] == "invalid_json"


async def test_a_redriven_order_cannot_undo_a_version_published_since(
    infra: InfraUnderTest,
    settings: ServiceSettings,
    resources: Resources,
    run_consumer: RunConsumer,
) -> None:
    """An order without ``updated_at`` is versioned by its publish time. Redriven, it is taken
    as published when it first was (the ``ecom-first-published`` attribute), so the version the
    app sent while it waited on dead-letter keeps the row."""
    p = settings.pubsub
    handler = OrderHandler(resources.orders, resources.dlq)
    old = body(ORDER, order_id=5, order_status="Pending", gift_wrap=True)
    async with run_consumer(p.orders_subscription, older_rule(handler)) as consumer:
        await resources.publisher.publish(p.orders_topic, [OutgoingMessage(old, {})])
        await eventually(lambda: acked(consumer, 1))
        assert consumer.stats.dead_lettered == 1
    await asyncio.sleep(0.01)  # the next version is published a moment later
    newer = body(ORDER, order_id=5, order_status="Shipped")
    async with run_consumer(p.orders_subscription, handler) as consumer:
        await resources.publisher.publish(p.orders_topic, [OutgoingMessage(newer, {})])
        await eventually(lambda: acked(consumer, 1))
        stored = await row(resources, 5)
        assert stored is not None
        assert stored["order_status"] == "Shipped"

        code, report = await ecom_redrive(infra, settings, "--all")
        assert code == 0, report
        assert report["totals"]["republished"] == 1
        await eventually(lambda: acked(consumer, 2))  # the redriven one, taken
        assert consumer.stats.dead_lettered == 0
    stored = await row(resources, 5)
    assert stored is not None
    assert stored["order_status"] == "Shipped"  # not undone by the older version


def refused_by_consumer(subscription: str, count: int) -> list[OutgoingMessage]:
    """Dead letters as :class:`~ecom_shared.pubsub.deadletter.DeadLetters` writes them."""
    letters = []
    for n in range(1, count + 1):
        original = {"event_type": "order", "n": str(n)} if n % 2 else {}
        attributes = {
            "error_reason": "invalid_value",
            "error_detail": "an older rule",
            "source_subscription": subscription,
            "source_message_id": str(n),
            "source_publish_time": "2026-01-01T00:00:00+00:00",
            "original_attributes": json.dumps(original),
        }
        letters.append(OutgoingMessage(body(ORDER, order_id=n), attributes))
    return letters


def originals(letters: list[OutgoingMessage]) -> Counter[tuple[bytes, str]]:
    """(body, attributes) of the messages these dead letters restore: the original attributes,
    and when the message was first published (which the consumers version it by)."""
    return Counter(
        (
            m.data,
            json.dumps(
                {
                    **json.loads(m.attributes["original_attributes"]),
                    FIRST_PUBLISHED: m.attributes["source_publish_time"],
                },
                sort_keys=True,
            ),
        )
        for m in letters
    )


Landed = Counter[tuple[bytes, str]]


async def landed(settings: ServiceSettings, enough: Callable[[Landed], bool]) -> Landed:
    """(body, attributes) of what the orders subscription receives, taken until ``enough``."""
    p = settings.pubsub
    host = os.environ["PUBSUB_EMULATOR_HOST"]
    got: Landed = Counter()

    async def taken() -> bool:
        for m in await drain_now(host, p.project_id, p.orders_subscription):
            got[m.data, json.dumps(m.attributes, sort_keys=True)] += 1
        return enough(got)

    await eventually(taken, what="every redriven message on the source topic")
    # Copies come at once: a quiet subscription now means none is on its way.
    for m in await drain_now(host, p.project_id, p.orders_subscription):
        got[m.data, json.dumps(m.attributes, sort_keys=True)] += 1
    return got


async def killed_midway(infra: InfraUnderTest, settings: ServiceSettings) -> int:
    """Start ``ecom-redrive --all``, SIGKILL it once its log says it republished some; how
    many it had republished by its last progress line."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ecom_redrive.cli", "--all"),
        env={**os.environ, **infra.environment(settings)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    republished = 0
    try:
        while republished == 0:
            line = await asyncio.wait_for(process.stdout.readline(), REDRIVE_TIMEOUT)
            assert line, "ecom-redrive ended before it republished anything"
            if b'"redrive.progress"' in line:
                republished = json.loads(line)["republished"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        code = await process.wait()
    assert code == -signal.SIGKILL, "ecom-redrive had finished before it was killed"
    return republished


async def run_until_nothing_left(
    infra: InfraUnderTest, settings: ServiceSettings
) -> list[dict[str, int]]:
    """Run ``ecom-redrive --all`` again until a run finds nothing; the totals of each run.

    What a killed run had pulled and not acked is invisible until the subscription's ack
    deadline has passed: only a run that starts after that may find nothing."""
    lapsed = time.monotonic() + settings.pubsub.ack_deadline_seconds + 1
    runs: list[dict[str, int]] = []

    async def nothing_left() -> bool:
        began = time.monotonic()
        code, report = await ecom_redrive(infra, settings, "--all")
        assert code == 0, report
        runs.append(report["totals"])
        return began > lapsed and report["totals"]["waiting"] == 0

    await eventually(nothing_left, timeout=90, what="a redrive run that finds nothing left")
    return runs


async def test_a_run_killed_midway_loses_nothing(
    infra: InfraUnderTest, settings: ServiceSettings, resources: Resources
) -> None:
    p = settings.pubsub
    letters = refused_by_consumer(p.orders_subscription, 3000)
    await resources.publisher.publish(p.dead_letter_topic, letters)

    republished = await killed_midway(infra, settings)
    assert 0 < republished < len(letters)
    runs = await run_until_nothing_left(infra, settings)
    host = os.environ["PUBSUB_EMULATOR_HOST"]
    assert await drain_now(host, p.project_id, p.dead_letter_subscription) == []
    expected = originals(letters)
    got = await landed(settings, lambda got: got >= expected)  # every one at least once
    assert set(got) == set(expected), "something else reached the topic"
    duplicates = got.total() - len(letters)
    acked_in_all = sum(totals["acked"] for totals in runs)
    assert acked_in_all + republished >= len(letters)
    print(f"killed after {republished} republished; later runs {runs}; duplicates {duplicates}")


async def test_a_crash_between_republish_and_ack_makes_only_duplicates(
    infra: InfraUnderTest, settings: ServiceSettings, resources: Resources
) -> None:
    p = settings.pubsub
    letters = refused_by_consumer(p.orders_subscription, 500)
    expected = originals(letters)
    await resources.publisher.publish(p.dead_letter_topic, letters)
    crash = {"ECOM_FAULTS__CRASH_AT": "after_republish_before_ack", "ECOM_FAULTS__CRASH_AFTER": "1"}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ecom_redrive.cli", "--all"),
        env={**os.environ, **infra.environment(settings), **crash},
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert await asyncio.wait_for(process.wait(), REDRIVE_TIMEOUT) == -signal.SIGKILL

    await run_until_nothing_left(infra, settings)
    # The batch republished before the crash was republished again: more than one copy.
    got = await landed(settings, lambda got: got.total() > len(letters) and got >= expected)
    assert set(got) == set(expected)
