"""``python -m ecom_order_consumer``: settings, logging, resources, run, exit code."""

from __future__ import annotations

from ecom_order_consumer.handler import OrderHandler
from ecom_shared.events import EventType
from ecom_shared.runtime.consumer_main import consumer_main
from ecom_shared.runtime.service import load_settings
from ecom_shared.settings import ConsumerServiceSettings
from ecom_shared.unknown_fields import UnknownFields


class OrderConsumerSettings(ConsumerServiceSettings):
    """``ECOM_PUBSUB__*``, ``ECOM_CASSANDRA__*``, ``ECOM_LOG__*`` and ``ECOM_CONSUMER__*``."""


def main() -> int:
    settings = load_settings(OrderConsumerSettings)
    return consumer_main(
        service="order-consumer",
        settings=settings,
        subscription_of=lambda pubsub: pubsub.orders_subscription,
        build_handler=lambda resources, crash: OrderHandler(
            resources.orders,
            resources.dlq,
            unknown_fields=UnknownFields(resources.telemetry.registry, EventType.ORDER),
            max_ahead=settings.consumer.max_event_time_ahead,
            crash=crash,
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
