"""What every scenario shares: options, the infrastructure, the benchmark's CQL session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ecom_devtools.bench.drain_results import Ceilings
from ecom_devtools.bench.options import BenchOptions
from ecom_devtools.bench.results import Results
from ecom_devtools.bench.stack import Infra
from ecom_shared.cassandra.session import Session


async def _nothing() -> None:
    return None


@dataclass
class Bench:
    options: BenchOptions
    infra: Infra
    cql: Session
    server_pids: dict[str, int]  # "cassandra" and "emulator"
    results: Results = field(default_factory=Results)
    timelines: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    fresh_emulator: Callable[[], Awaitable[None]] = _nothing

    def ceiling(self, kind: str) -> float:
        """The best rate a minimal consumer of ``kind`` reached in this run (0 if not measured)."""
        ceilings = self.results.get("ceilings", Ceilings) or Ceilings()
        measured = ceilings.kinds.get(kind)
        return float(measured.rate) if measured else 0.0

    def ceiling_cpu(self, kind: str) -> float:
        """The least consumer CPU per message (µs) a minimal consumer of ``kind`` needed."""
        ceilings = self.results.get("ceilings", Ceilings) or Ceilings()
        measured = ceilings.kinds.get(kind)
        return float(measured.cpu_us_per_message) if measured else 0.0


def ratio(figure: float, reference: float) -> float | None:
    return round(figure / reference, 3) if reference > 0 else None
