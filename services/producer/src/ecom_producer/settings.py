"""Settings of the producer: the shared sections plus ``ECOM_PRODUCER__*`` (flags override)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ecom_shared.settings import ServiceSettings

Share = float


class ProducerOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    orders: int = Field(default=10_000, ge=0, description="orders to generate; 0 runs forever")
    rate: float = Field(default=0.0, ge=0, description="messages per second; 0 is unlimited")
    seed: int = 42
    id_base: int | None = Field(
        default=None, ge=1, le=10**15, description="first order id; default: derived from the clock"
    )
    payments_first: Share = Field(default=0.3, ge=0, le=1)
    duplicates: Share = Field(default=0.02, ge=0, le=1)
    no_payment: Share = Field(default=0.05, ge=0, le=1)
    orphan_payments: Share = Field(default=0.02, ge=0, le=1)
    reemits: Share = Field(default=0.1, ge=0, le=1)
    second_payments: Share = Field(default=0.02, ge=0, le=1)
    malformed: Share = Field(default=0.01, ge=0, le=1)
    manifest: Path | None = Field(default=None, description="JSON-lines ground truth to append to")
    progress_seconds: float = Field(default=2.0, gt=0)


class ProducerSettings(ServiceSettings):
    producer: ProducerOptions = Field(default_factory=ProducerOptions)
