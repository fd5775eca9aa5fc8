"""Fields an app sends that the product does not know: counted by name, with a bounded number
of labels, and the message handled."""

from __future__ import annotations

from ecom_order_consumer.handler import OrderHandler
from ecom_shared.events import EventType, Payment, parse_event
from ecom_shared.observability.metrics import new_registry
from ecom_shared.unknown_fields import MAX_NAMES, OTHER, UnknownFields
from tests.fakes import FakeDlq, FakeOrders, received
from tests.handlers import NOW, ORDER, PAYMENT, body


def unknown_counts(registry: object) -> dict[tuple[str, str], float]:
    found = {}
    for metric in registry.collect():  # type: ignore[attr-defined]
        for sample in metric.samples:
            if sample.name == "ecom_unknown_fields_total":
                found[(sample.labels["event_type"], sample.labels["field"])] = sample.value
    return found


async def test_unknown_fields_are_counted_by_name_and_the_message_is_handled() -> None:
    registry = new_registry()
    orders, dlq = FakeOrders(), FakeDlq()
    on_order = OrderHandler(
        orders, dlq, clock=lambda: NOW, unknown_fields=UnknownFields(registry, EventType.ORDER)
    )
    await on_order(received(body(ORDER, coupon="FREE")))
    await on_order(received(body(ORDER, coupon="HALF", gift=True)))
    assert 1 in orders.orders
    assert unknown_counts(registry) == {("order", "coupon"): 2, ("order", "gift"): 1}


def test_unknown_field_names_get_a_bounded_number_of_labels() -> None:
    registry = new_registry()
    unknown = UnknownFields(registry, EventType.PAYMENT)
    for n in range(MAX_NAMES + 25):
        unknown.record(parse_event(Payment, body(PAYMENT, **{f"field_{n}": n}), None))
    counts = unknown_counts(registry)
    assert len(counts) == MAX_NAMES + 1
    assert counts[("payment", OTHER)] == 25
