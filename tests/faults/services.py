"""Service instances a scenario starts, kills and restarts: one real process per start.

Each start of an instance is a new :class:`ecom_devtools.local.services.ServiceProcess` with a
log of its own, so the port a restarted service serves and the lines it logs are never confused
with those of the process before it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ecom_devtools.local.services import ServiceProcess

CONSUMERS = ("order-consumer", "payment-consumer")


@dataclass
class Service:
    """One instance of a service (``kind``, e.g. ``order-consumer``) across its restarts."""

    kind: str
    index: int
    logs: Path
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    runs: list[ServiceProcess] = field(default_factory=list)
    exit_codes: list[int | None] = field(default_factory=list)
    started_at: list[float] = field(default_factory=list)
    """Wall-clock time (``time.time()``) of each run's start."""
    ended_at: list[float] = field(default_factory=list)
    """Of each run that ended: when. Killed here, the moment of the kill; killed by itself (a
    crash hook), its last log line; else when it was seen gone."""

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index}"

    @property
    def process(self) -> ServiceProcess:
        if not self.runs:
            raise RuntimeError(f"{self.name} was never started")
        return self.runs[-1]

    @property
    def alive(self) -> bool:
        return bool(self.runs) and self.process.poll() is None

    def start(self, base_env: dict[str, str]) -> ServiceProcess:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        log = self.logs / f"{self.name}.run{len(self.runs) + 1}.log"
        process = ServiceProcess(self.kind, list(self.args), log, dict(self.env))
        process.start(base_env)
        self.runs.append(process)
        self.started_at.append(time.time())
        return process

    def signal(self, sig: signal.Signals) -> None:
        self.process.signal(sig)

    def signal_term(self) -> None:
        self.signal(signal.SIGTERM)

    async def wait_exit(self, timeout: float) -> int | None:
        """Poll until the current process exits; its code, or None if it still runs."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
        if code is not None and len(self.exit_codes) < len(self.runs):
            self.exit_codes.append(code)
            if len(self.ended_at) < len(self.runs):
                crashed = code == -signal.SIGKILL
                self.ended_at.append(self._last_logged() if crashed else time.time())
        return code

    async def kill(self) -> int | None:
        """SIGKILL and reap."""
        self.signal(signal.SIGKILL)
        if len(self.ended_at) < len(self.runs):
            self.ended_at.append(time.time())
        return await self.wait_exit(30)

    def _last_logged(self) -> float:
        """The time of the current run's last log line (now, if it logged none)."""
        try:
            lines = self.process.log_path.read_text(encoding="utf-8", errors="replace")
            stamp = json.loads(lines.splitlines()[-1])["timestamp"]
            return datetime.fromisoformat(stamp).timestamp()
        except (OSError, IndexError, ValueError, KeyError, TypeError):
            return time.time()

    def lives(self) -> list[Life]:
        """Each run: when it started and ended, and whether it was killed."""
        return [
            Life(self.kind, started, ended, code == -signal.SIGKILL)
            for started, ended, code in zip(
                self.started_at, self.ended_at, self.exit_codes, strict=False
            )
        ]

    async def stop(self, grace: float, *, signalled: bool = False) -> int | None:
        """SIGTERM (unless ``signalled`` already: a second one during the final teardown would
        kill it by signal); SIGKILL if it has not exited after ``grace`` seconds. Its exit code."""
        if not self.runs:
            return None
        if not signalled:
            self.signal(signal.SIGTERM)
        code = await self.wait_exit(grace)
        return code if code is not None else await self.kill()

    async def wait_ready(self, timeout: float) -> None:
        """Wait until the current process serves its port and, for a consumer, has opened its
        resources and started pulling (``consumer.started``); fail if it exits first."""
        deadline = time.monotonic() + timeout
        await self.process.wait_served_port(timeout)
        while self.kind in CONSUMERS and not self.events("consumer.started", all_runs=False):
            if not self.alive or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start pulling within {timeout} s")
            await asyncio.sleep(0.1)

    def events(self, event: str, *, all_runs: bool = True) -> list[dict[str, Any]]:
        """The JSON lines logged with ``event`` (by every run, or only the current one)."""
        found: list[dict[str, Any]] = []
        for run in self.runs if all_runs else self.runs[-1:]:
            try:
                text = run.log_path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                if f'"{event}"' in line:
                    try:
                        found.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
        return found

    async def metric(self, name: str, **labels: str) -> float | None:
        """Sum of the current process's samples named ``name`` with these labels; None while it
        serves no metrics (starting, or gone)."""
        samples = await self.scrape()
        return None if samples is None else total(samples, name, **labels)

    async def scrape(self) -> list[Sample] | None:
        """Every sample of the current process's metrics, read at one moment; None while it
        serves no metrics (starting, or gone)."""
        port = self.process.served_port() if self.alive else None
        if port is None:
            return None
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(f"http://127.0.0.1:{port}/metrics") as reply,
            ):
                text = await reply.text()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None
        return [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]


@dataclass(frozen=True, slots=True)
class Life:
    """One run of a service: wall-clock start and end, and whether it was killed (SIGKILL)."""

    kind: str
    started: float
    ended: float
    killed: bool


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` that carry these labels."""
    return sum(
        sample.value
        for sample in samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )
