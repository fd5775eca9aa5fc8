"""``ecom-verify`` on real Cassandra and the real emulator: a stream the producer published,
handled by the real consumers, passes; one tampered order status, one tampered parked payment
and one dead letter too many each fail it; a malformed message that never reached the
dead-letter topic fails it too. Reading the dead letters leaves them where they were."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import uuid

import acsylla

from ecom_devtools.local.drain import drain_now
from ecom_order_consumer.handler import OrderHandler
from ecom_producer.planned import Chunk
from ecom_producer.publish import PhasePublisher, Tally
from ecom_producer.stream import StreamOptions, StreamPlanner
from ecom_shared.events import EventType
from ecom_shared.pubsub.client import OutgoingMessage
from ecom_shared.runtime.resources import Resources
from ecom_shared.settings import ServiceSettings
from ecom_verifier.checks import Report
from ecom_verifier.dead_letters import DeadLetterCheck, SubscriptionDeadLetters
from ecom_verifier.manifest import malformed_record, read_records, with_message_id
from ecom_verifier.manifest_index import ManifestIndex
from ecom_verifier.verify import verify
from tests.infra import InfraUnderTest
from tests.integration.conftest import RunConsumer, acked
from tests.integration.test_pipeline import payment_handler
from tests.polling import eventually

ORDERS = 40


def failing(report: Report) -> dict[str, int]:
    return {name: count for name, count in report.counts.items() if count}


async def publish_stream(res: Resources) -> tuple[list[str], Chunk]:
    """A stream with every complication and many malformed messages, as the producer
    publishes it; its manifest lines (with message ids)."""
    p = res.settings.pubsub
    options = StreamOptions(
        seed=14, id_base=int(uuid.uuid4().int % 10**9) * 1000, orphan_payments=0.1, malformed=0.2
    )
    chunk = StreamPlanner(options).chunk(ORDERS)
    manifest = io.StringIO()
    topics = {EventType.ORDER: p.orders_topic, EventType.PAYMENT: p.payments_topic}
    phases = PhasePublisher(res.publisher, topics, manifest, Tally())
    for phase in chunk.phases():
        await phases.publish(phase)
    return manifest.getvalue().splitlines(), chunk


async def handle_all(res: Resources, run_consumer: RunConsumer, chunk: Chunk) -> None:
    """Orders first, then payments: only the orphans stay parked, without a DLQ worker."""
    p = res.settings.pubsub
    on = {kind: sum(m.topic_kind is kind for m in chunk.messages()) for kind in EventType}
    async with run_consumer(p.orders_subscription, OrderHandler(res.orders, res.dlq)) as orders:
        await eventually(lambda: acked(orders, on[EventType.ORDER]))
    async with run_consumer(p.payments_subscription, payment_handler(res)) as payments:
        await eventually(lambda: acked(payments, on[EventType.PAYMENT]))


async def tamper(res: Resources, cql: str) -> None:
    c = res.settings.cassandra
    table = cql.format(orders=f"{c.keyspace}.{c.orders_table}", dlq=f"{c.keyspace}.{c.dlq_table}")
    await res.cql.execute(acsylla.create_statement(table))


async def test_the_verifier_passes_a_true_run_and_fails_each_tampering(
    resources: Resources,
    settings: ServiceSettings,
    run_consumer: RunConsumer,
    infra: InfraUnderTest,
) -> None:
    res, p = resources, settings.pubsub
    lines, chunk = await publish_stream(res)
    await handle_all(res, run_consumer, chunk)
    records = list(read_records(lines))
    malformed = [r for r in records if r["kind"] == "malformed"]
    assert len(malformed) >= 3
    dead_letters = DeadLetterCheck.of(
        SubscriptionDeadLetters(res.subscription(p.dead_letter_subscription)), p
    )
    index = ManifestIndex.build(lines)
    try:
        await eventually(lambda: _passes(res, index, dead_letters))
        assert (await verify(res.cql, settings.cassandra, index)).ok  # without the dead letters

        order_id = next(r["event"]["order_id"] for r in records if r["kind"] == "order")
        await tamper(res, f"UPDATE {{orders}} SET order_status = 'X' WHERE order_id = {order_id}")
        orphan = next(r["event"] for r in records if r.get("orphan"))
        await tamper(
            res,
            # Payment cells carry version numbers above any clock (ecom_shared.versions):
            # a hand edit needs a timestamp above them too.
            "UPDATE {dlq} USING TIMESTAMP 9000000000000000000 SET payment_status = 'Refunded' "
            f"WHERE order_id = {orphan['order_id']} AND payment_id = {orphan['payment_id']}",
        )
        valid = next(r for r in records if r["kind"] == "payment")
        extra = {
            "error_reason": "invalid_value",
            "source_subscription": p.payments_subscription,
            "source_message_id": valid["message_id"],  # a valid payment dead-lettered
        }
        await res.publisher.publish(p.dead_letter_topic, [OutgoingMessage(b"{}", extra)])
        report = await verify(res.cql, settings.cassandra, index, dead_letters=dead_letters)
        assert failing(report) == {
            "orders_wrong": 1, "parked_wrong": 1, "dead_letter_unexplained": 1,
        }, report.examples  # fmt: skip
        assert report.observed["dead_letters_read"] == len(malformed) + 1
    finally:
        index.close()

    never_sent = with_message_id(malformed_record("orders", "invalid_json"), "no-such-id")
    with_missing = ManifestIndex.build([*lines, never_sent])
    try:
        report = await verify(res.cql, settings.cassandra, with_missing, dead_letters=dead_letters)
    finally:
        with_missing.close()
    assert report.counts["dead_letter_missing"] == 1
    assert report.examples["dead_letter_missing"] == ["orders message no-such-id (invalid_json)"]

    code, output = await ecom_verify(infra, settings, lines, p.dead_letter_subscription)
    assert code == 1, output
    assert "dead_letter_unexplained    1" in output
    assert "orders_wrong               1" in output
    left = await drain_now(infra.pubsub_host_port, p.project_id, p.dead_letter_subscription)
    assert len(left) == len(malformed) + 1  # every check left the dead letters where they were


async def _passes(res: Resources, index: ManifestIndex, dead_letters: DeadLetterCheck) -> bool:
    """The dead letters are published as the consumers go: wait until all are there."""
    report = await verify(res.cql, res.settings.cassandra, index, dead_letters=dead_letters)
    assert not report.counts["dead_letter_unexplained"], report.examples
    return report.ok


async def ecom_verify(
    infra: InfraUnderTest, settings: ServiceSettings, lines: list[str], subscription: str
) -> tuple[int, str]:
    """``ecom-verify --dead-letter-subscription`` as a user runs it."""
    manifest = infra.base_dir / f"manifest-{uuid.uuid4().hex[:8]}.jsonl"
    manifest.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "ecom_verifier.verify", "--manifest", str(manifest)),
        *("--dead-letter-subscription", subscription),
        env={**os.environ, **infra.environment(settings)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")
