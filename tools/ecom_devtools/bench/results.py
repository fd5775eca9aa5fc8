"""What the benchmark reports, as typed values: the sections of ``results.json``.

Every scenario returns frozen dataclasses (:mod:`ecom_devtools.bench.drain_results`,
:mod:`ecom_devtools.bench.run_results`); only their ``as_json`` turns them into the file's
objects, key by key in the file's order. :class:`Results` keeps each section under its name,
in the order the sections were first recorded; :class:`RunReport` is the whole file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

JsonObject = dict[str, Any]
"""One object of ``results.json``, ready for :func:`json.dumps`."""


class Section(Protocol):
    """A scenario's result: what the file holds under the scenario's name."""

    def as_json(self) -> JsonObject: ...


S = TypeVar("S", bound=Section)


class Results:
    """Each section under its name, in the order first recorded (recording a name again
    replaces its section in place)."""

    def __init__(self) -> None:
        self._sections: dict[str, Section] = {}

    def record(self, name: str, section: Section) -> None:
        self._sections[name] = section

    def get(self, name: str, kind: type[S]) -> S | None:
        section = self._sections.get(name)
        return section if isinstance(section, kind) else None

    def as_json(self) -> JsonObject:
        return {name: section.as_json() for name, section in self._sections.items()}


@dataclass(frozen=True)
class Failures:
    """Why each failed scenario failed (its exception's repr, cut)."""

    scenarios: Mapping[str, str]

    def with_failure(self, scenario: str, why: str) -> Failures:
        return Failures({**self.scenarios, scenario: why})

    def as_json(self) -> JsonObject:
        return dict(self.scenarios)


@dataclass(frozen=True)
class ScenarioSeconds:
    """Wall time of each step of the run."""

    steps: Mapping[str, float]

    def as_json(self) -> JsonObject:
        return dict(self.steps)


@dataclass(frozen=True)
class ServiceMemory:
    peak_rss_bytes: int
    ratio: float | None

    def as_json(self) -> JsonObject:
        return {"peak_rss_bytes": self.peak_rss_bytes, "ratio": self.ratio}


@dataclass(frozen=True)
class Memory:
    """Peak RSS of each service at full rate, against the project's limit."""

    limit_bytes: int
    services: Mapping[str, ServiceMemory]

    def as_json(self) -> JsonObject:
        services = {name: memory.as_json() for name, memory in self.services.items()}
        return {"limit_bytes": self.limit_bytes, "services": services}


@dataclass(frozen=True)
class Machine:
    """Where the run ran."""

    nproc: int | None
    cpu_model: str
    memory_gib: float
    load_average_at_start: list[float]
    python: str
    kernel: str

    def as_json(self) -> JsonObject:
        return {
            "nproc": self.nproc,
            "cpu_model": self.cpu_model,
            "memory_gib": self.memory_gib,
            "load_average_at_start": self.load_average_at_start,
            "python": self.python,
            "kernel": self.kernel,
        }


@dataclass(frozen=True)
class RunReport:
    """The whole of ``results.json``: the run, then every section."""

    started_at: str
    smoke: bool
    machine: Machine
    sizes: Mapping[str, Any]  # the options' Sizes, field by field
    total_seconds: float
    results: Results

    def as_json(self) -> JsonObject:
        return {
            "started_at": self.started_at,
            "smoke": self.smoke,
            "machine": self.machine.as_json(),
            "sizes": self.sizes,
            "total_seconds": self.total_seconds,
            **self.results.as_json(),
        }
