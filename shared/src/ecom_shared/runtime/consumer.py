"""The one consumer loop every consumer runs.

Each of ``pullers`` loops pulls a batch and hands every message to the handler concurrently;
its :class:`~ecom_shared.runtime.settle.Settler` keeps the leases of what the loop holds alive
for the subscription's own ack deadline (read at start), and acks what finished: a fast batch in one
request once it is done, sent while the loop already waits on its next pull, a slow one as it
goes (one ack request in flight per loop). A handler that returns means "written durably, ack
it"; one that raises is judged by
:func:`ecom_shared.policy.decide`. While a dependency is down the loop stops pulling and
probes it with backoff, so a Cassandra outage does not burn delivery attempts; and how many
messages are written at once starts over from a small number after Cassandra failed to answer
(:mod:`ecom_shared.runtime.limit`), so the batches in hand do not flood it as it recovers. A failed
pull (emulator restarted, connection reset) is retried with backoff too. A stop request
lets each puller finish and ack the batch it holds, within a stated grace period.

Metrics move per batch (received, acked, in flight) or per failure, never per successful
message. ``/readyz`` reads what the gate knows of Cassandra and what the pulls know of Pub/Sub.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from ecom_shared.error_text import clip, describe_error
from ecom_shared.errors import CASSANDRA, PUBSUB, InvalidMessage
from ecom_shared.events import order_id_hint
from ecom_shared.observability.health import Telemetry
from ecom_shared.observability.logs import get_logger
from ecom_shared.observability.metrics import ConsumerMetrics
from ecom_shared.policy import Action, decide
from ecom_shared.pubsub.client import ReceivedMessage, Subscription
from ecom_shared.pubsub.deadletter import DeadLetters
from ecom_shared.runtime.backoff import Backoff, wait_or_stop
from ecom_shared.runtime.faults import NO_CRASH, CrashHook
from ecom_shared.runtime.gate import PROBE_SECONDS, DependencyGate, Probe
from ecom_shared.runtime.limit import AdaptiveLimit
from ecom_shared.runtime.settle import Settler
from ecom_shared.settings import ConsumerSettings

Handler = Callable[[ReceivedMessage], Awaitable[None]]
"""Return: the message's effects are durable, ack it. Raise: the error policy decides."""

log = get_logger(__name__)

CONFIG_READ_SECONDS: Final = 5.0
"""How long start-up waits for the subscription's configuration before using the setting."""

PULL_TIMEOUT_SECONDS: Final = 120.0
"""The client's bound on a long-poll pull. It must outlast the server's own wait (about 90 s):
a pull the client abandons still leases the messages the server hands it."""

PROGRESS_SECONDS: Final = 30.0
"""Interval of the ``consumer.progress`` lines, written while the counters move."""

UNREADY_AFTER_PULL_FAILURES: Final = 3
"""Consecutive failed pulls after which ``/readyz`` reports Pub/Sub unreachable: a single
failed pull (a connection reset) is only retried, with backoff."""


@dataclass(frozen=True, slots=True)
class Pacing:
    """How soon a consumer probes Cassandra, and how it backs off a dependency that failed:
    delays doubling (with jitter) from the first to the last bound, for the gate's probes and
    for failed pulls. Fixed in the product; tests pass shorter ones."""

    probe_seconds: float = PROBE_SECONDS
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    def backoff(self) -> Backoff:
        return Backoff(self.backoff_initial_seconds, self.backoff_max_seconds)


@dataclass(slots=True)
class ConsumerStats:
    received: int = 0
    acked: int = 0
    dead_lettered: int = 0
    retried: int = 0
    pull_errors: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class Consumer:
    """Runs a handler over one subscription until asked to stop."""

    def __init__(
        self,
        subscription: Subscription,
        handler: Handler,
        dead_letters: DeadLetters,
        settings: ConsumerSettings,
        *,
        ack_deadline_seconds: int,
        probe: Probe,
        telemetry: Telemetry | None = None,
        crash: CrashHook = NO_CRASH,
        pacing: Pacing = Pacing(),
    ) -> None:
        self._subscription = subscription
        self._pacing = pacing
        self._crash = crash
        self._handler = handler
        self._dead_letters = dead_letters
        self._settings = settings
        self._ack_deadline = ack_deadline_seconds  # the setting, until run() reads the real one
        telemetry = telemetry or Telemetry.create()
        self._health = telemetry.health
        self._health.track(PUBSUB)
        self._metrics = ConsumerMetrics(telemetry.registry, subscription.name)
        self._gate = DependencyGate({CASSANDRA: probe}, pacing.backoff(), telemetry.health)
        self._slots = AdaptiveLimit(settings.max_in_flight, settings.min_in_flight)
        self._metrics.in_flight_limit.set(self._slots.limit)
        self.stats = ConsumerStats()

    @property
    def ack_deadline_seconds(self) -> int:
        """The lease the consumer keeps renewing: the subscription's own once :meth:`run` has
        read it, else the setting."""
        return self._ack_deadline

    async def run(self, stop: asyncio.Event) -> None:
        """Pull and handle until ``stop`` is set, then drain within the grace period."""
        self._ack_deadline = await self._read_ack_deadline()
        log.info(
            "consumer.started",
            subscription=self._subscription.name,
            pullers=self._settings.pullers,
            max_messages=self._settings.max_messages,
            ack_deadline_seconds=self._ack_deadline,
        )
        async with asyncio.TaskGroup() as group:
            pullers = [
                group.create_task(self._pull_loop(stop, group))
                for _ in range(self._settings.pullers)
            ]
            group.create_task(self._enforce_grace(stop, pullers))
            helpers = [
                group.create_task(self._report_progress(stop)),
                group.create_task(self._gate.watch(stop, self._pacing.probe_seconds)),
            ]
            await asyncio.wait(pullers)
            for helper in helpers:
                helper.cancel()
        log.info("consumer.stopped", subscription=self._subscription.name, **asdict(self.stats))

    async def _read_ack_deadline(self) -> int:
        """The subscription's ack deadline, which is what decides when Pub/Sub delivers a
        message again; the setting, with a warning, when it cannot be read (reading needs
        ``pubsub.subscriptions.get``, which ``roles/pubsub.subscriber`` lacks)."""
        try:
            async with asyncio.timeout(CONFIG_READ_SECONDS):
                return await self._subscription.read_ack_deadline()
        except Exception as exc:  # noqa: BLE001 - whatever failed, the setting stands in
            log.warning(
                "subscription.deadline_unknown",
                subscription=self._subscription.name,
                fallback_seconds=self._ack_deadline,
                error=describe_error(exc),
            )
            return self._ack_deadline

    async def _report_progress(self, stop: asyncio.Event) -> None:
        """One INFO line per interval with the counters, while they move (none per message)."""
        last: dict[str, object] = {}
        while not await wait_or_stop(stop, PROGRESS_SECONDS):
            now = asdict(self.stats)
            if now != last:
                log.info("consumer.progress", subscription=self._subscription.name, **now)
                last = now

    async def _enforce_grace(self, stop: asyncio.Event, pullers: list[asyncio.Task[None]]) -> None:
        await stop.wait()
        _, pending = await asyncio.wait(pullers, timeout=self._settings.shutdown_grace_seconds)
        if pending:
            log.warning("consumer.drain_timeout", unfinished=len(pending))
            for task in pending:
                task.cancel()

    async def _pull_loop(self, stop: asyncio.Event, group: asyncio.TaskGroup) -> None:
        backoff = self._pacing.backoff()
        settler = Settler(
            self._subscription,
            ack_deadline=self._ack_deadline,
            retry_delay=self._settings.retry_delay_seconds,
            on_acked=self._acked,
            crash=self._crash,
        )
        # In the group, so a bug in settling ends the consumer at once instead of going unseen.
        sending = group.create_task(settler.run())
        try:
            while not stop.is_set() and await self._gate.wait_open(stop):
                batch = await self._pull(stop, backoff)
                if batch:
                    settler.hold(m.ack_id for m in batch)
                    await self._process(batch, settler)
                    settler.flush()  # the next pull need not wait for this ack's round trip
        except asyncio.CancelledError:  # past the grace period: give up the pending acks too
            sending.cancel()
            raise
        settler.close()
        await sending

    def _acked(self, count: int) -> None:
        self.stats.acked += count
        self._metrics.acked.inc(count)

    async def _pull(self, stop: asyncio.Event, backoff: Backoff) -> list[ReceivedMessage]:
        size = self._settings.max_messages
        # After a failure the first pull is answered at once: Pub/Sub being back is then seen
        # (logged, and the service ready again) even on a subscription with nothing to deliver,
        # where a long poll would wait for the next message.
        pull = asyncio.ensure_future(
            self._subscription.pull_now(size)
            if backoff.failures
            else self._subscription.pull(size, PULL_TIMEOUT_SECONDS)
        )
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({pull, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not pull.done():
            # Asked to stop mid-pull. Anything the server leased to this request is redelivered
            # after its ack deadline: at-least-once holds.
            pull.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pull
            return []
        try:
            batch = pull.result()
        except Exception as exc:  # noqa: BLE001 - no pull failure may end the service
            # Connection refused or reset, a 5xx, a 404 after an emulator restart, even a reply
            # the client cannot parse: all are retried with backoff, and all are logged.
            self._pull_failed(exc, backoff.failures + 1)
            await backoff.sleep(stop)
            return []
        if backoff.failures:
            log.info("pull.recovered", after_failures=backoff.failures)
            backoff.reset()
        self._health.up(PUBSUB)
        return batch

    def _pull_failed(self, exc: Exception, consecutive: int) -> None:
        self.stats.pull_errors += 1
        self._metrics.pull_errors.inc()
        error = describe_error(exc)
        log.warning("pull.failed", error=error, consecutive=consecutive)
        if consecutive >= UNREADY_AFTER_PULL_FAILURES:
            self._health.down(PUBSUB, f"{consecutive} pulls failed in a row, last: {error}")

    async def _process(self, batch: list[ReceivedMessage], settler: Settler) -> None:
        """Handle a batch; each message's outcome goes to ``settler`` as soon as it is known."""
        self.stats.received += len(batch)
        self._metrics.received.inc(len(batch))
        self._metrics.in_flight.inc(len(batch))
        try:
            await asyncio.gather(*(self._handle(m, settler) for m in batch))
        finally:
            self._metrics.in_flight.dec(len(batch))
            self._metrics.in_flight_limit.set(self._slots.limit)

    async def _handle(self, message: ReceivedMessage, settler: Settler) -> None:
        """Handle one message and queue its outcome: ack it, or redeliver it later.

        Nothing is logged on success, so no per-message log context is bound: the failure
        paths name the message themselves (binding and unbinding would cost every message).
        """
        try:
            async with self._slots:
                await self._handler(message)
        except Exception as exc:  # noqa: BLE001 - the error policy judges every failure
            ok = await self._judge(message, exc)
        else:
            self._slots.succeeded()
            ok = True
        settler.finished(message.ack_id, ok=ok)

    async def _judge(self, message: ReceivedMessage, exc: Exception) -> bool:
        """The policy's verdict; should judging itself fail (a bug: every step of it is made
        not to raise), the message is redelivered later and the loop goes on."""
        try:
            return await self._apply_policy(message, exc)
        except Exception as bug:  # the failure path must never end the loop
            log.exception(
                "message.policy_failed",
                outcome="retry_later",
                message_id=message.message_id,
                error=describe_error(bug),
            )
            self._retried("policy_failed")
            return False

    async def _apply_policy(self, message: ReceivedMessage, exc: Exception) -> bool:
        """Judge one failure; True means ack it. Each failure is one log line naming the
        message, its order (when the body tells) and the outcome."""
        decision = decide(exc)
        self.stats.reasons[decision.reason] = self.stats.reasons.get(decision.reason, 0) + 1
        about: dict[str, Any] = {"reason": decision.reason, "message_id": message.message_id}
        if (order_id := order_id_hint(message.data)) is not None:
            about["order_id"] = order_id
        if decision.action is Action.DEAD_LETTER:
            return await self._dead_letter(message, exc, about)
        if decision.dependency is not None:
            if decision.dependency == CASSANDRA and self._slots.backed_off():
                self._metrics.in_flight_limit.set(self._slots.limit)
                log.warning("consumer.backed_off", in_flight_limit=self._slots.limit, **about)
            self._gate.close(decision.dependency, decision.reason)
            log.info("message.retry", outcome="retry_later", error=describe_error(exc), **about)
        else:
            log.error(
                "message.failed",
                outcome="retry_later",
                exc_info=exc,
                delivery_attempt=message.delivery_attempt,
                **about,
            )
        self._retried(decision.reason)
        return False

    async def _dead_letter(
        self, message: ReceivedMessage, exc: Exception, about: dict[str, Any]
    ) -> bool:
        detail = exc.detail if isinstance(exc, InvalidMessage) else describe_error(exc)
        try:
            await self._dead_letters.send(
                message, subscription=self._subscription.name, reason=about["reason"], detail=detail
            )
        except Exception as publish_exc:  # noqa: BLE001 - any failure here means retry later
            error = describe_error(publish_exc)
            log.warning("message.dead_letter_failed", outcome="retry_later", error=error, **about)
            self._gate.close(PUBSUB, f"dead-letter publish failed: {error}")
            self._retried(about["reason"])
            return False
        log.warning(
            "message.dead_lettered",
            outcome="dead_lettered",
            detail=clip(detail, 500),
            delivery_attempt=message.delivery_attempt,
            **about,
        )
        self.stats.dead_lettered += 1
        self._metrics.dead_lettered(about["reason"])
        return True

    def _retried(self, reason: str) -> None:
        self.stats.retried += 1
        self._metrics.retried(reason)
