"""A fault scenario on the real services: isolated names, real processes, the producer's
manifest as ground truth, the verifier as judge.

A scenario gets topics, subscriptions and a keyspace of its own (``InfraUnderTest.settings``)
and provisions them the way ``ecom-setup`` does. It starts any number of each service as a
process (``python -m ...``, as a user runs them), kills and restarts them, and runs
``ecom-producer`` with a manifest. :meth:`Scenario.finish` waits until the system is quiet,
runs the verifier, checks that the dead-letter subscription holds exactly the malformed
messages the manifest lists, and reports the issue's figures (see :mod:`tests.faults.report`)::

    async with Scenario(infra, "sigkill", tmp_path) as s:
        s.start("order-consumer"); s.start("payment-consumer"); s.start("dlq-worker")
        producer = s.start_producer(1500, rate=800, seed=3)
        ...                     # faults: await s.kill(service), then s.restart(service)
        assert await s.wait_producer(producer) == 0
        report = await s.finish()
    assert report.ok, report

What a scenario has: ``settings`` and ``env`` (what the services get), ``manifest``,
``start(kind, count, env=, args=)`` returning :class:`~tests.faults.services.Service` instances
(``kill``, ``signal``, ``wait_exit``, ``metric``, ``events`` of their JSON log), ``kill``,
``terminate`` and ``restart``, ``fault(kind, count)`` to count what else it injects,
``start_producer``/``wait_producer``/``produce``, ``provision``, ``expected()``, ``wait_quiet``,
``take_dead_letters`` and ``finish`` (which also stops every service; their exit codes are in the
report).

"Quiet" means: the verifier passes, no live consumer has a message in flight or has received
one since the last look, an immediate pull finds nothing waiting on the orders and payments
subscriptions, and then a running DLQ worker has started and finished a pass (two more passes
on its metrics) and the verifier still passes. The harness never does the product's work: it
runs no DLQ pass of its own, and a scenario whose workers are all dead fails, naming their exit
codes. Its peeks spend a delivery attempt on each message they see, so it peeks only once the
consumers have gone still (and counts its peeks in the report).

Kills the issue wants to land mid-work go through :meth:`Scenario.kill_mid_work`, which kills a
consumer only while its metrics show messages in flight, and a DLQ worker only while a pass is
shown to be running; the evidence is in the report's ``kills``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from ecom_devtools.local.drain import Pulled, drain_now
from ecom_shared.cassandra.session import Session, cassandra_session
from ecom_shared.pubsub.provision import provision
from ecom_verifier.manifest import ExpectedState, load_expected, read_records
from ecom_verifier.verify import Report, verify
from tests.faults.copies import count_copies, unannounced
from tests.faults.pubsub import (
    check_dead_letters,
    dead_letter_key,
    expected_dead_letters,
    source_id,
    take_dead_letters,
    waiting,
)
from tests.faults.report import FaultReport, emit, fold
from tests.faults.services import CONSUMERS, Service, total
from tests.infra import InfraUnderTest

SERVICE_ENV = {
    "ECOM_LOG__LEVEL": "INFO",
    "ECOM_CONSUMER__RETRY_DELAY_SECONDS": "1",
    "ECOM_WORKER__INTERVAL_SECONDS": "1",
}
"""Shorter waits than production, so faults heal within a test; nothing else differs."""

STOP_GRACE = 40.0  # the consumers' drain budget (20 s) plus start-up and closing, generously


class Scenario:
    def __init__(
        self,
        infra: InfraUnderTest,
        name: str,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
    ) -> None:
        self.infra = infra
        self.name = name
        self.workdir = workdir
        self.settings = infra.settings(f"f{uuid.uuid4().hex[:10]}")
        self.env = {
            **os.environ,
            **infra.environment(self.settings),
            **SERVICE_ENV,
            **(env or {}),
        }
        self.manifest = workdir / "manifest.jsonl"
        self.services: list[Service] = []
        self.faults: Counter[str] = Counter()
        self.dead_letters: list[Pulled] = []
        self.announcements: list[Pulled] = []
        self.republished = 0
        self.kills: list[dict[str, object]] = []
        self.peeks = 0
        self._received: dict[str, float] | None = None  # at the last look, by consumer
        self._emulator_runs = 1
        self._started = time.monotonic()

    async def __aenter__(self) -> Scenario:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self.provision()
        self._started = time.monotonic()
        return self

    async def provision(self) -> None:
        """Topics, subscriptions (with dead-letter policies) and schema, as ``ecom-setup`` does;
        idempotent, so also the way to recreate them after an emulator restart."""
        await provision(self.settings)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_all(STOP_GRACE if exc is None else 5.0)

    # -- services ---------------------------------------------------------------------------

    def start(
        self,
        kind: str,
        count: int = 1,
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> list[Service]:
        """Start ``count`` new instances of ``kind``; ``env`` adds to the scenario's."""
        started = []
        for _ in range(count):
            index = sum(s.kind == kind for s in self.services) + 1
            service = Service(kind, index, self.workdir / "logs", dict(env or {}), list(args or []))
            service.start(self.env)
            self.services.append(service)
            started.append(service)
        return started

    def of(self, kind: str) -> list[Service]:
        return [s for s in self.services if s.kind == kind]

    def restart(self, service: Service) -> None:
        service.start(self.env)

    def fault(self, kind: str, count: int = 1) -> None:
        """Count an injected fault (``kill`` and ``terminate`` count their own)."""
        self.faults[kind] += count

    async def kill(self, service: Service) -> int | None:
        self.fault(f"SIGKILL {service.kind}")
        return await service.kill()

    async def terminate(self, service: Service, grace: float) -> int | None:
        """SIGTERM; the exit code if it exits within ``grace`` s, else None (it still runs)."""
        self.fault(f"SIGTERM {service.kind}")
        service.signal_term()
        return await service.wait_exit(grace)

    async def kill_mid_work(self, service: Service, timeout: float = 120.0) -> None:
        """SIGKILL ``service`` at a moment shown to be mid-work, and reap it: a consumer as soon
        as its metrics show messages in flight; a DLQ worker while a pass runs. For the worker
        the proof is made while it is frozen (SIGSTOP): ``ecom_dlq_pass_running`` read 1 and its
        log holds no more finished passes than its counters did at that reading (the counters
        and the log line of a pass are updated with no await between them, so a scrape cannot
        fall between them); if the pass ended meanwhile it is let go (SIGCONT) and tried again.
        The evidence goes in the report's ``kills``; no kill within ``timeout`` fails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            samples = await service.scrape()
            if samples is None:
                await asyncio.sleep(0.05)
                continue
            if service.kind in CONSUMERS:
                in_flight = total(samples, "ecom_messages_in_flight")
                if in_flight > 0:
                    await self.kill(service)
                    self._killed(service, in_flight=int(in_flight))
                    return
            elif total(samples, "ecom_dlq_pass_running") == 1:
                finished = total(samples, "ecom_dlq_passes_total")
                service.signal(signal.SIGSTOP)
                logged = len(service.events("dlq.pass_done", all_runs=False)) + len(
                    service.events("dlq.pass_failed", all_runs=False)
                )
                if logged == finished:
                    await self.kill(service)
                    self._killed(service, pass_running=int(finished) + 1)
                    return
                service.signal(signal.SIGCONT)
            await asyncio.sleep(0.005)
        raise AssertionError(f"{service.name} was never seen mid-work within {timeout} s")

    def _killed(self, service: Service, **evidence: int) -> None:
        self.kills.append({"service": service.name, "run": len(service.runs), **evidence})

    async def started(self, *services: Service, timeout: float = 120.0) -> None:
        """Wait until each service (default: all) is at work: serving its metrics port and,
        for a consumer, pulling (it logged ``consumer.started``)."""
        serving = tuple(s for s in self.services if s.alive and "--once" not in s.args)
        for service in services or serving:
            await service.wait_ready(timeout)

    async def stop_all(self, grace: float = STOP_GRACE) -> None:
        for service in self.services:
            if service.alive:
                service.signal_term()
        for service in self.services:
            if len(service.exit_codes) < len(service.runs):  # not reaped yet
                await service.stop(grace, signalled=True)

    # -- the producer -----------------------------------------------------------------------

    def start_producer(
        self,
        orders: int,
        *,
        seed: int = 1,
        rate: float = 0.0,
        id_base: int = 1_000_000,
        **shares: float,
    ) -> Service:
        """``ecom-producer`` appending to the scenario's manifest; ``shares`` are its share
        options by name (``payments_first=0.5``, ``duplicates=0.3``, ``malformed=0.02``...)."""
        args = ["--orders", str(orders), "--seed", str(seed), "--rate", str(rate)]
        args += ["--id-base", str(id_base), "--manifest", str(self.manifest)]
        for share, value in shares.items():
            args += [f"--{share.replace('_', '-')}", str(value)]
        [producer] = self.start("producer", args=args)
        return producer

    async def wait_producer(self, producer: Service, timeout: float = 300.0) -> int | None:
        return await producer.wait_exit(timeout)

    async def produce(self, orders: int, **options: float) -> int | None:
        """Run the producer to the end; its exit code."""
        return await self.wait_producer(self.start_producer(orders, **options))  # type: ignore[arg-type]

    def published_per_consumer(self) -> dict[str, int]:
        """How many messages the manifest lists per consuming service (each duplicate and
        malformed message counted)."""
        counts: Counter[str] = Counter()
        for record in read_records(self._manifest_lines()):
            topic = record.get("topic") or ("orders" if record["kind"] == "order" else "payments")
            counts[_CONSUMER_OF[topic]] += 1
        return dict(counts)

    def expected(self) -> ExpectedState:
        return load_expected(self.manifest)

    # -- quiet, verdict, report -------------------------------------------------------------

    async def wait_quiet(self, timeout: float = 240.0) -> Report:
        """The verifier's report once the system is quiet, or its last one at the deadline."""
        deadline = time.monotonic() + timeout
        expected = self.expected()
        async with cassandra_session(self.settings.cassandra) as session:
            report = await self._verify(session, expected)
            while time.monotonic() < deadline:
                if report.ok and await self._idle():
                    passed = await self._dlq_pass(deadline)
                    report = await self._verify(session, expected)
                    if passed and report.ok and await self._idle():
                        return report
                await asyncio.sleep(0.5)
                report = await self._verify(session, expected)
        return report

    def _live_workers(self) -> list[Service]:
        return [s for s in self.of("dlq-worker") if s.alive and "--once" not in s.args]

    async def _verify(self, session: Session, expected: ExpectedState) -> Report:
        return await verify(session, self.settings.cassandra, expected)

    async def _idle(self) -> bool:
        """No live consumer holds a message or received one since the last look, and then an
        immediate pull finds nothing waiting."""
        received: dict[str, float] = {}
        for service in self.services:
            if service.kind not in CONSUMERS or not service.alive:
                continue
            samples = await service.scrape()
            if samples is None or total(samples, "ecom_messages_in_flight") != 0:
                return False
            received[service.name] = total(samples, "ecom_messages_received_total")
        still, self._received = received == self._received, received
        if not still:
            return False
        p = self.settings.pubsub
        for subscription in (p.orders_subscription, p.payments_subscription):
            self.peeks += 1
            if await waiting(self.infra.pubsub_host_port, p.project_id, subscription):
                return False
        return True

    async def _dlq_pass(self, deadline: float) -> bool:
        """True once a whole DLQ pass ran after this call began, on a running worker; a
        scenario that started workers and has none running now fails."""
        workers = self._live_workers()
        if not workers:
            for worker in self.of("dlq-worker"):
                await worker.wait_exit(0)  # reap it, for its exit code
            codes = {w.name: w.exit_codes for w in self.of("dlq-worker")}
            if codes:
                raise AssertionError(f"no DLQ worker runs to finish the work: {codes}")
            return True  # a scenario without a worker: parked payments stay parked
        before = [await w.metric("ecom_dlq_passes_total", outcome="ok") for w in workers]
        while time.monotonic() < deadline:
            for worker, then in zip(workers, before, strict=True):
                now = await worker.metric("ecom_dlq_passes_total", outcome="ok")
                if then is not None and now is not None and now >= then + 2:
                    return True
            await asyncio.sleep(0.3)
        return False

    def emulator_restarted(self) -> None:
        """A new emulator numbers its messages from 1 again: from now on, the source ids of what
        is taken from dead-letter and dlq-payments are prefixed with the emulator's run, so that
        a message of the new one is never counted as a copy of an old one."""
        self._emulator_runs += 1

    def _tagged(self, messages: list[Pulled]) -> list[Pulled]:
        if self._emulator_runs == 1:
            return messages
        return [
            replace(
                m,
                attributes={
                    **m.attributes,
                    "source_message_id": f"{self._emulator_runs}/{source_id(m)}",
                },
            )
            for m in messages
        ]

    async def take_dead_letters(self, timeout: float = 30.0) -> list[Pulled]:
        """Drain the dead-letter subscription until it gave as many distinct messages as the
        manifest lists as malformed (or ``timeout``), then once more for any extra."""
        want = sum(expected_dead_letters(self._manifest_lines()).values())
        deadline = time.monotonic() + timeout
        host = self.infra.pubsub_host_port
        while True:
            self.dead_letters += self._tagged(await take_dead_letters(host, self.settings.pubsub))
            distinct = {source_id(m) for m in self.dead_letters}
            if len(distinct) >= want or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        self.dead_letters += self._tagged(await take_dead_letters(host, self.settings.pubsub))
        return self.dead_letters

    async def take_announcements(self) -> list[Pulled]:
        """Everything on the ``dlq-payments`` subscription now, acked, kept for the report."""
        p = self.settings.pubsub
        self.announcements += self._tagged(
            await drain_now(self.infra.pubsub_host_port, p.project_id, p.dlq_payments_subscription)
        )
        return self.announcements

    def _manifest_lines(self) -> list[str]:
        return self.manifest.read_text(encoding="utf-8").splitlines()

    async def finish(self, timeout: float = 240.0, *, announced_all: bool = True) -> FaultReport:
        """Wait quiet, verify, check the dead letters and the announcements (each copy must be
        explained by a death; with ``announced_all``, every payment of an order that never came
        must have been announced), stop every service (SIGTERM; their exit codes are in the
        report); emit and return the scenario's report."""
        verdict = await self.wait_quiet(timeout)
        p = self.settings.pubsub
        dead_letters = await self.take_dead_letters()
        dead = check_dead_letters(dead_letters, expected_dead_letters(self._manifest_lines()), p)
        announcements = await self.take_announcements()
        seconds = round(time.monotonic() - self._started, 1)
        await self.stop_all()
        lives = [life for service in self.services for life in service.lives()]
        dead_copies = count_copies(
            dead_letters,
            lives,
            source_of=source_id,
            handler_of=lambda m: _CONSUMER_OF[dead_letter_key(m, p).split("/")[0]],
        )
        announced = count_copies(
            announcements,
            lives,
            source_of=source_id,
            handler_of=lambda m: "payment-consumer",
        )
        orphans = [
            str(r.get("message_id"))
            for r in read_records(self._manifest_lines())
            if r["kind"] == "payment" and r.get("orphan")
        ]
        report = fold(
            self.name,
            verdict.counts,
            dead,
            unexplained_copies=len(dead_copies.unexplained) + len(announced.unexplained),
            unannounced=unannounced(announcements, orphans) if announced_all else 0,
            out_of_scope=verdict.observed.get("rows_out_of_scope", 0),
            events=self.expected().published,
            faults=sum(self.faults.values()),
            seconds=seconds,
            announced=announced.distinct,
            announcement_copies=announced.copies,
            republished=self.republished,
            peeks=self.peeks,
            kills=self.kills,
            fault_kinds=dict(self.faults),
            examples={
                **verdict.examples,
                **_named("unexplained dead-letter copies", dead_copies.unexplained),
                **_named("unexplained announcement copies", announced.unexplained),
            },
            exit_codes={s.name: list(s.exit_codes) for s in self.services},
        )
        emit(report, self.workdir / "fault-report.jsonl")
        return report


_CONSUMER_OF = {"orders": "order-consumer", "payments": "payment-consumer"}


def _named(what: str, sources: tuple[str, ...]) -> dict[str, list[str]]:
    return {what: list(sources[:10])} if sources else {}
