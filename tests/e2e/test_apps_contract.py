"""The apps' messages as they are: a stream in exactly the original producers'
format (:mod:`tests.apps_stream`: 2,000 orders in three versions each, their payments, some
first, duplicates, invalid hours, unknown fields, non-ASCII text), published with no
attributes, through the services as processes on the real emulator and Cassandra. Then every
row is read back with CQL of our own and compared with the value published last, text byte for
byte and money digit for digit (:mod:`tests.apps_tables`), and the dead-letter topic must hold
exactly the payments whose time is no instant."""

from __future__ import annotations

import json
import os
import re
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from ecom_devtools.local.drain import Pulled, drain_now
from ecom_shared.cassandra.session import cassandra_session
from ecom_shared.pubsub.provision import provision
from ecom_shared.settings import ServiceSettings
from tests.apps_stream import AppsStream, Sent, Topic, apps_stream, publish_stream
from tests.apps_tables import (
    PAYMENT_COLUMNS,
    Expected,
    Row,
    compare_orders,
    compare_parked,
    expected_state,
    order_cells,
    payment_cells,
    payment_rank,
    read_tables,
)
from tests.faults.pubsub import waiting
from tests.faults.services import CONSUMERS, Service
from tests.infra import InfraUnderTest
from tests.polling import eventually, within

pytestmark = pytest.mark.timeout(600)  # the first test waits for the run (and Cassandra's start)

SERVICE_ENV = {
    "ECOM_LOG__LEVEL": "INFO",
    "ECOM_CONSUMER__RETRY_DELAY_SECONDS": "1",
    "ECOM_WORKER__INTERVAL_SECONDS": "1",
}
"""Shorter waits than production, so a parked payment is joined within a second or two."""
KINDS = ("order-consumer", "payment-consumer", "dlq-worker")
QUIET_TIMEOUT = 240.0
STOP_GRACE = 40.0


@dataclass(frozen=True)
class AppsRun:
    stream: AppsStream
    expected: Expected
    settings: ServiceSettings
    rows: dict[int, Row]
    parked: dict[tuple[int, int], Row]
    dead: list[Pulled]
    exits: dict[str, int | None]


@pytest.fixture(scope="module")
async def run(
    infra: InfraUnderTest,
    tmp_path_factory: pytest.TempPathFactory,
    record_testsuite_property: Callable[[str, object], None],
) -> AppsRun:
    """The stream through the three services; the tables and dead letters once quiet."""
    stream = apps_stream(orders=2000, cycles=3, seed=13)
    expected = expected_state(stream)
    settings = infra.settings(f"a{uuid.uuid4().hex[:10]}")
    await provision(settings)
    env = {**os.environ, **infra.environment(settings), **SERVICE_ENV}
    logs = tmp_path_factory.mktemp("apps-contract")
    services = [Service(kind, 1, logs) for kind in KINDS]
    for service in services:
        service.start(env)
    try:
        for service in services:
            await service.wait_ready(120)
        started = time.monotonic()
        p = settings.pubsub
        topics: dict[Topic, str] = {"orders": p.orders_topic, "payments": p.payments_topic}
        await publish_stream(infra.pubsub_host_port, p.project_id, topics, stream)
        published = time.monotonic() - started
        await wait_quiet(services, infra, settings, stream)
        async with cassandra_session(settings.cassandra) as session:
            rows, parked = await read_tables(session, settings.cassandra)
        dead = await take_dead_letters(infra, settings, sum(expected.dead_letters.values()))
        seconds = time.monotonic() - started
    finally:
        exits = {s.name: await s.stop(STOP_GRACE) for s in services}
    result = AppsRun(stream, expected, settings, rows, parked, dead, exits)
    summary = {
        **summarise(result),
        "seconds publishing": round(published, 1),
        "seconds from the first publish to all read back": round(seconds, 1),
    }
    print("\napps contract:", json.dumps(summary, indent=2, ensure_ascii=False))
    record_testsuite_property("apps_contract", json.dumps(summary, ensure_ascii=False))
    return result


def summarise(run: AppsRun) -> dict[str, Any]:
    paid = [r["payment_source"] for r in run.rows.values() if r["payment_id"] is not None]
    return {
        "sent": run.stream.counts(),
        "stored orders": len(run.rows),
        "joined payments by payment_source": dict(Counter(paid)),
        "parked (order never came)": len(run.parked),
        "dead-lettered by reason": dict(
            Counter(m.attributes.get("error_reason") for m in run.dead)
        ),
        "value differences": len(value_differences(run)),
        "dead letters not as expected": len(dead_letter_problems(run)),
        "dead letters whose detail does not name the hour sent": len(hour_problems(run)),
        "exit codes": run.exits,
    }


def value_differences(run: AppsRun) -> list[str]:
    return compare_orders(run.expected, run.rows) + compare_parked(run.expected, run.parked)


# -- the tests ----------------------------------------------------------------------------------


def test_every_stored_value_is_the_one_sent_last(run: AppsRun) -> None:
    """Orders in their last published version, the winning payment joined to each, payments
    whose order never came parked with all their fields: no value differs from the one sent."""
    found = value_differences(run)
    assert found == [], f"{len(found)} differences, e.g. {found[:20]}"
    assert len(run.rows) == len(run.expected.orders)
    assert len(run.parked) == len(run.expected.parked) > 0


def test_no_invalid_hour_payment_is_stored_or_parked(run: AppsRun) -> None:
    stored = {r["payment_id"] for r in run.rows.values()} | {key[1] for key in run.parked}
    assert run.expected.invalid_payment_ids
    assert not stored & run.expected.invalid_payment_ids


def test_the_dead_letter_topic_holds_exactly_the_invalid_hours(run: AppsRun) -> None:
    problems = dead_letter_problems(run)
    assert problems == [], problems[:20]


def test_each_dead_letter_names_the_hour_it_was_sent_with(run: AppsRun) -> None:
    """The original producer sends hours 24 to 500: the detail names the one sent."""
    problems = hour_problems(run)
    assert problems == [], f"{len(problems)} of {len(run.dead)}, e.g. {problems[:10]}"


def test_the_services_stopped_cleanly(run: AppsRun) -> None:
    assert set(run.exits.values()) == {0}, run.exits


def test_the_comparison_catches_a_wrong_product(run: AppsRun) -> None:
    """Each way a product could go wrong, applied to a copy of the rows read, is reported."""
    for name, (order_id, cells) in wrong_products(run).items():
        rows = {**run.rows, order_id: {**run.rows[order_id], **cells}}
        assert compare_orders(run.expected, rows), f"not caught: {name}"
    (order_id, payment_id), sent = next(iter(run.expected.parked.items()))
    parked = {
        **run.parked,
        (order_id, payment_id): {**payment_cells(sent), "payment_status": b"completed"},
    }
    assert compare_parked(run.expected, parked), "not caught: a parked payment changed"


def wrong_products(run: AppsRun) -> dict[str, tuple[int, Row]]:
    orders, rows = run.expected.orders, run.rows
    floaty = next(i for i, s in orders.items() if repr(float(s.price_text or "")) != s.price_text)
    zeros = next(i for i, s in orders.items() if (s.price_text or "").endswith("0"))
    accented = next(i for i, s in orders.items() if "é" in s.value["item"])
    first: dict[int, Sent] = {}
    for order in run.stream.messages("orders"):
        first.setdefault(order.order_id, order)
    older = next(i for i, s in first.items() if order_cells(s) != order_cells(orders[i]))
    paid = next(iter(run.expected.payments))
    two, loser = _an_outranked_payment(run)
    day = date.fromisoformat(orders[paid].value["creation_date"]) - timedelta(days=1)
    return {
        "price through a float": (floaty, {"price": repr(float(orders[floaty].price_text or ""))}),
        "trailing zeros dropped": (zeros, {"price": (orders[zeros].price_text or "").rstrip("0")}),
        "status lower-cased": (paid, {"order_status": rows[paid]["order_status"].lower()}),
        "text re-normalised (NFD)": (
            accented,
            {"item": unicodedata.normalize("NFD", orders[accented].value["item"]).encode()},
        ),
        "an older version won": (older, order_cells(first[older])),
        "the earlier payment won": (two, payment_cells(loser)),
        "payment erased by a re-sent order": (paid, dict.fromkeys(PAYMENT_COLUMNS)),
        "creation date shifted a day": (paid, {"created_on": day.isoformat()}),
    }


def _an_outranked_payment(run: AppsRun) -> tuple[int, Sent]:
    """An order with two valid payments, and the one that must not win."""
    valid: dict[int, list[Sent]] = {}
    for payment in run.stream.messages("payments"):
        if (
            not payment.duplicate
            and payment.value["payment_id"] not in run.expected.invalid_payment_ids
        ):
            valid.setdefault(payment.order_id, []).append(payment)
    order_id = next(i for i, ps in valid.items() if len(ps) > 1 and i in run.expected.orders)
    return order_id, min(valid[order_id], key=payment_rank)


# -- waiting until the pipeline is quiet ------------------------------------------------------


async def wait_quiet(
    services: list[Service], infra: InfraUnderTest, settings: ServiceSettings, stream: AppsStream
) -> None:
    """Every message acked at least once; then nothing in flight or waiting, two whole DLQ
    worker passes, and still nothing in flight or waiting."""
    deadline = time.monotonic() + QUIET_TIMEOUT
    by_kind = {s.kind: s for s in services}
    want = {
        "order-consumer": sum(1 for _ in stream.messages("orders")),
        "payment-consumer": sum(1 for _ in stream.messages("payments")),
    }
    for kind, count in want.items():

        async def acked(kind: str = kind, count: int = count) -> bool:
            return (await by_kind[kind].metric("ecom_messages_acked_total") or 0) >= count

        await _until(services, deadline, acked, f"{kind} acked at least {count}")

    async def quiet() -> bool:
        if not await _idle(services, infra, settings):
            return False
        await _two_passes(by_kind["dlq-worker"], services, deadline)
        return await _idle(services, infra, settings)

    await _until(services, deadline, quiet, "the pipeline went quiet")


async def _until(
    services: list[Service], deadline: float, check: Callable[[], Awaitable[bool]], what: str
) -> None:
    """Poll ``check`` until ``deadline``; fail at once, with its log, if a service exited."""

    async def alive_and() -> bool:
        for service in services:
            if not service.alive:
                log = service.process.log_path.read_text(encoding="utf-8", errors="replace")
                pytest.fail(f"{service.name} exited: {log[-3000:]}")
        return await check()

    await eventually(alive_and, deadline - time.monotonic(), what=what, every=0.3)


async def _idle(services: list[Service], infra: InfraUnderTest, settings: ServiceSettings) -> bool:
    for service in services:
        if service.kind in CONSUMERS and await service.metric("ecom_messages_in_flight") != 0:
            return False
    p = settings.pubsub
    for subscription in (p.orders_subscription, p.payments_subscription):
        if await waiting(infra.pubsub_host_port, p.project_id, subscription):
            return False
    return True


async def _two_passes(worker: Service, services: list[Service], deadline: float) -> None:
    """Wait until the worker has finished two passes more than now (so one began after)."""
    name = "ecom_dlq_passes_total"
    before: list[float] = []

    async def served() -> bool:
        passes = await worker.metric(name, outcome="ok")
        if passes is not None:
            before.append(passes)
        return passes is not None

    async def two_more() -> bool:
        return (await worker.metric(name, outcome="ok") or 0) >= before[0] + 2

    await _until(services, deadline, served, "the DLQ worker served its metrics")
    await _until(services, deadline, two_more, "the DLQ worker made two more passes")


# -- the dead-letter topic ----------------------------------------------------------------------


async def take_dead_letters(
    infra: InfraUnderTest, settings: ServiceSettings, want: int
) -> list[Pulled]:
    """The dead-letter subscription's messages, one per source message: until ``want`` came
    (30 s at most), then once more for any extra."""
    p = settings.pubsub
    got: dict[str, Pulled] = {}

    async def all_came_and_no_more() -> bool:
        pulled = await drain_now(infra.pubsub_host_port, p.project_id, p.dead_letter_subscription)
        for message in pulled:
            got.setdefault(message.attributes.get("source_message_id", message.message_id), message)
        return not pulled and len(got) >= want

    await within(all_came_and_no_more, 30, every=0.5)
    return list(got.values())


def dead_letter_problems(run: AppsRun) -> list[str]:
    """Exactly the invalid-hour payments (by body, one per publish), each with the reason
    ``invalid_value`` and the payments subscription as its source."""
    problems = []
    got, want = Counter(m.data for m in run.dead), run.expected.dead_letters
    if got != want:
        extra, missing = got - want, want - got
        problems.append(
            f"{sum(extra.values())} extra, e.g. {list(extra)[:3]}; "
            f"{sum(missing.values())} missing, e.g. {list(missing)[:3]}"
        )
    source = run.settings.pubsub.payments_subscription
    for message in run.dead:
        attrs = message.attributes
        if attrs.get("error_reason") != "invalid_value":
            problems.append(f"{message.data!r}: reason {attrs.get('error_reason')}")
        if attrs.get("source_subscription", "").rsplit("/", 1)[-1] != source:
            problems.append(f"{message.data!r}: from {attrs.get('source_subscription')}")
    return problems


def hour_problems(run: AppsRun) -> list[str]:
    """Dead letters whose detail does not name the hour their body was sent with."""
    problems = []
    for message in run.dead:
        if message.data not in run.expected.dead_letters:
            continue  # reported by dead_letter_problems
        when = str(json.loads(message.data)["payment_datetime"])
        hour = when.partition("T")[2].partition(":")[0]
        detail = message.attributes.get("error_detail", "")
        if not re.search(rf"\bhour {re.escape(hour)}\b", detail):
            problems.append(f"sent {when!r}, detail {detail!r}")
    return problems
