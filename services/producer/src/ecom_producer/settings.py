"""Settings of the producer: Pub/Sub, logging and the HTTP port, plus ``ECOM_PRODUCER__*``
(flags override). No Cassandra section: the producer never reads or writes the tables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ecom_producer.stream import StreamShares
from ecom_shared.settings import PubSubServiceSettings


class ProducerOptions(StreamShares):
    """The stream's shares (:class:`~ecom_producer.stream.StreamShares`) and how to publish it."""

    orders: int = Field(default=10_000, ge=0, description="orders to generate; 0 runs forever")
    rate: float = Field(default=0.0, ge=0, description="messages per second; 0 is unlimited")
    seed: int = 42
    id_base: int | None = Field(
        default=None, ge=1, le=10**15, description="first order id; default: derived from the clock"
    )
    manifest: Path | None = Field(default=None, description="JSON-lines ground truth to append to")


class ProducerSettings(PubSubServiceSettings):
    producer: ProducerOptions = Field(default_factory=ProducerOptions)
