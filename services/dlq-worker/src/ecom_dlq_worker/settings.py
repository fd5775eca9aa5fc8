"""Settings of the DLQ worker: Cassandra, logging and HTTP, plus ``ECOM_WORKER__*``.

The worker reads and writes the tables alone, so it has no Pub/Sub section (``ECOM_PUBSUB__*``
in a shared ``.env`` is ignored here)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ecom_shared.runtime.faults import FaultSettings
from ecom_shared.settings import StoreServiceSettings


class WorkerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    interval_seconds: float = Field(
        default=30.0, gt=0, le=86_400, description="pause between passes"
    )
    page_size: int = Field(default=500, ge=10, le=5000)
    token_segments: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="token ranges per pass: each range query reads only its share of the "
        "tombstones that deletes leave, and Cassandra aborts a query past 100,000 of them",
    )
    concurrency: int = Field(default=64, ge=1, le=1024, description="rows handled at once")
    max_age_seconds: float = Field(
        default=3600.0, gt=0, description="parked longer than this is reported as stale"
    )


class DlqWorkerSettings(StoreServiceSettings):
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    faults: FaultSettings = Field(
        default_factory=FaultSettings
    )  # tests only: ecom_shared.runtime.faults
