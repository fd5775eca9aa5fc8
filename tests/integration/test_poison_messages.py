"""Poison messages on the real emulator: bodies that once crashed a consumer (deep nesting,
60 KB of brackets, numbers of thousands of digits, ``1e999999``), each published to running
consumers, are dead-lettered with their reason and acked, and the consumers go on."""

from __future__ import annotations

from ecom_order_consumer.handler import OrderHandler
from ecom_shared.runtime.consumer import Consumer
from ecom_shared.runtime.resources import Resources
from ecom_shared.settings import ServiceSettings
from tests.bodies import POISON
from tests.integration.conftest import RunConsumer, send_and_wait
from tests.integration.test_pipeline import ORDER, PAYMENT, drain, payment_handler, row
from tests.unit.shared.test_events import body


async def test_poison_bodies_are_dead_lettered_and_the_consumers_go_on(
    resources: Resources, settings: ServiceSettings, run_consumer: RunConsumer
) -> None:
    p = settings.pubsub
    async with (
        run_consumer(p.orders_subscription, OrderHandler(resources.orders, resources.dlq)) as oc,
        run_consumer(p.payments_subscription, payment_handler(resources)) as pc,
    ):
        for consumer, topic in ((oc, p.orders_topic), (pc, p.payments_topic)):
            for data, _ in POISON.values():  # one at a time: each must be acked on its own
                await send_and_wait(resources, consumer, topic, [data], {})
        # Still running and acking: a good order and its payment after all of them.
        await send_and_wait(resources, oc, p.orders_topic, [body(ORDER, order_id=5)], {})
        paid = body(PAYMENT, order_id=5, payment_id=50)
        await send_and_wait(resources, pc, p.payments_topic, [paid], {})
        _assert_every_poison_dead_lettered_and_nothing_retried(oc)
        _assert_every_poison_dead_lettered_and_nothing_retried(pc)
    stored = await row(resources, 5)
    assert stored is not None
    assert stored["payment_id"] == 50
    dead = await drain(resources, p.dead_letter_subscription, 2 * len(POISON))
    letters = {
        source: {
            m.data: m.attributes for m in dead if m.attributes["source_subscription"] == source
        }
        for source in (p.orders_subscription, p.payments_subscription)
    }
    as_orders = {data: a["error_reason"] for data, a in letters[p.orders_subscription].items()}
    assert as_orders == dict(POISON.values())  # byte for byte, each with its reason
    assert set(letters[p.payments_subscription]) == set(as_orders)
    assert all(a["error_detail"] for by_data in letters.values() for a in by_data.values())


def _assert_every_poison_dead_lettered_and_nothing_retried(consumer: Consumer) -> None:
    assert consumer.stats.dead_lettered == len(POISON)
    assert consumer.stats.retried == 0
    assert consumer.stats.acked == len(POISON) + 1
