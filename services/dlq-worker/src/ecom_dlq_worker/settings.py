"""Settings of the DLQ worker: the shared sections plus ``ECOM_WORKER__*``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ecom_shared.faults import FaultSettings
from ecom_shared.settings import ServiceSettings


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
    report_limit: int = Field(default=20, ge=0, le=1000, description="stale ids named per pass")
    probe_seconds: float = Field(
        default=10.0, gt=0, le=600, description="how often Cassandra is checked between passes"
    )


class DlqWorkerSettings(ServiceSettings):
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    faults: FaultSettings = Field(default_factory=FaultSettings)  # tests only: ecom_shared.faults
