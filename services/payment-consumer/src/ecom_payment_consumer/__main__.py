"""``python -m ecom_payment_consumer``: settings, logging, resources, run, exit code."""

from __future__ import annotations

from ecom_payment_consumer.handler import PaymentHandler
from ecom_shared.events import EventType
from ecom_shared.observability.metrics import PaymentMetrics
from ecom_shared.pubsub.batching import BatchingPublisher
from ecom_shared.runtime.consumer_main import consumer_main
from ecom_shared.runtime.service import load_settings
from ecom_shared.settings import ConsumerServiceSettings
from ecom_shared.unknown_fields import UnknownFields


class PaymentConsumerSettings(ConsumerServiceSettings):
    """``ECOM_PUBSUB__*``, ``ECOM_CASSANDRA__*``, ``ECOM_LOG__*`` and ``ECOM_CONSUMER__*``."""


def main() -> int:
    settings = load_settings(PaymentConsumerSettings)
    return consumer_main(
        service="payment-consumer",
        settings=settings,
        subscription_of=lambda pubsub: pubsub.payments_subscription,
        build_handler=lambda resources, crash: PaymentHandler(
            resources.orders,
            resources.dlq,
            # Announcements of concurrently parked payments share publish requests.
            BatchingPublisher(resources.publisher),
            settings.pubsub.dlq_payments_topic,
            on_parked=PaymentMetrics(resources.telemetry.registry).parked.inc,
            unknown_fields=UnknownFields(resources.telemetry.registry, EventType.PAYMENT),
            max_ahead=settings.consumer.max_event_time_ahead,
            crash=crash,
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
