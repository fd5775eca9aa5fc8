"""One redrive run: read the dead-letter subscription until it has nothing more to hand out,
republish what the selection takes to the topic each message came from, ack each dead letter
only once its republish succeeded, and leave the rest where it is.

**Nothing is lost.** A dead letter is acked only after Pub/Sub accepted its republish (the
publish returned its ids). A run killed between the two leaves it unacked: it comes back after
its ack deadline and the next run republishes it again, a duplicate on the source topic that the
consumers' idempotent writes absorb (``docs/operating.md`` says what a duplicate does).

**What is not taken stays.** Dead letters the selection leaves, a dry run's, and those whose
republish failed are held for :data:`HOLD_SECONDS` while the run reads on (so they are not
handed out again and again), then given back at the end (ack deadline 0): they are at once
ready for the next run. A run killed midway leaves them held until their hold ends. The
dead-letter subscription has no dead-letter policy of its own (``ecom-setup`` gives it none),
so giving a message back never moves it anywhere. Each dead letter is counted once, however
often it is handed out during a run; one already republished that is handed out again (its ack
was lost) is acked again, not republished.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

import aiohttp

from ecom_redrive.letters import DeadLetter, read_letter
from ecom_redrive.selection import Selection, Tally, group_of
from ecom_redrive.topics import TopicOf
from ecom_shared.error_text import describe_error
from ecom_shared.errors import PublishFailed
from ecom_shared.observability.logs import get_logger
from ecom_shared.pubsub.client import OutgoingMessage, Publisher, ReceivedMessage
from ecom_shared.runtime.faults import NO_CRASH, CrashHook, CrashPoint

log = get_logger(__name__)

PULL_SIZE: Final = 1000
HOLD_SECONDS: Final = 120
QUIET_SECONDS: Final = 2.0
"""A run ends once pulls have come back empty for this long (an immediate pull may answer empty
while messages wait, on real Pub/Sub more often than on the emulator)."""
EMPTY_PAUSE: Final = 0.2


class DeadLetterSubscription(Protocol):
    """What a run needs of the dead-letter subscription
    (:class:`~ecom_shared.pubsub.client.PubSubSubscription` has it)."""

    name: str

    async def pull_now(self, max_messages: int) -> list[ReceivedMessage]: ...

    async def ack(self, ack_ids: Sequence[str]) -> None: ...

    async def extend(self, ack_ids: Sequence[str], seconds: int) -> None: ...


@dataclass(slots=True)
class _State:
    now: datetime
    tally: Tally = field(default_factory=Tally)
    held: dict[str, str] = field(default_factory=dict)  # message id -> its latest ack id
    done: set[str] = field(default_factory=set)  # message ids republished in this run
    unacked: set[str] = field(default_factory=set)  # of those, the ones no ack has succeeded for
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    tally: Tally
    stopped: bool  # asked to stop before the subscription was read to its end

    @property
    def ok(self) -> bool:
        totals = self.tally.totals()
        return not (self.stopped or totals["failed"] or totals["republished"] > totals["acked"])


@dataclass(frozen=True, slots=True)
class Redrive:
    subscription: DeadLetterSubscription
    publisher: Publisher
    topic_of: TopicOf
    selection: Selection
    dry_run: bool = False
    crash: CrashHook = NO_CRASH
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def run(self, stop: asyncio.Event) -> Outcome:
        state = _State(now=self.clock())
        try:
            await self._read(state, stop)
        finally:
            await self._give_back(state)
        return Outcome(state.tally, state.stopped)

    async def _read(self, state: _State, stop: asyncio.Event) -> None:
        quiet_since: float | None = None
        while not self._limit_reached(state.tally):
            if stop.is_set():
                state.stopped = True
                return
            batch = await self.subscription.pull_now(PULL_SIZE)
            if batch:
                quiet_since = None
                await self._handle(state, batch)
                continue
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= QUIET_SECONDS:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), EMPTY_PAUSE)

    def _limit_reached(self, tally: Tally) -> bool:
        limit = self.selection.limit
        return limit is not None and tally.selected.total() >= limit

    async def _handle(self, state: _State, batch: list[ReceivedMessage]) -> None:
        again = [(m.message_id, m.ack_id) for m in batch if m.message_id in state.done]
        hold: list[str] = []
        take: dict[str, list[DeadLetter]] = {}
        for message in batch:
            if message.message_id in state.done:
                continue
            if message.message_id in state.held:  # handed out again: counted already
                state.held[message.message_id] = message.ack_id
                hold.append(message.ack_id)
                continue
            letter = read_letter(message)
            state.tally.saw(letter, state.now)
            topic = await self._take(state, letter)
            if topic is None:
                state.held[letter.message_id] = letter.ack_id
                hold.append(letter.ack_id)
            else:
                take.setdefault(topic, []).append(letter)
        if hold:
            await self.subscription.extend(hold, HOLD_SECONDS)
        if again:
            await self._ack(state, again)
        for topic, letters in take.items():
            await self._republish(state, topic, letters)

    async def _take(self, state: _State, letter: DeadLetter) -> str | None:
        """The topic to republish ``letter`` to, if this run takes it (a dry run takes none,
        but counts what it would take)."""
        if self._limit_reached(state.tally) or not self.selection.matches(letter, state.now):
            return None
        topic = await self.topic_of(letter.source) if letter.source else None
        if topic is None:
            state.tally.not_redrivable[f"the topic of {letter.source} is unknown"] += 1
            return None
        state.tally.selected[group_of(letter, state.now)] += 1
        return None if self.dry_run else topic

    async def _republish(self, state: _State, topic: str, letters: list[DeadLetter]) -> None:
        messages = restored(letters)
        try:
            await self.publisher.publish(topic, messages)
        except PublishFailed as exc:
            state.tally.failed += len(letters)
            error = str(exc)  # PublishFailed says what failed, with no secret
            log.error("redrive.publish_failed", topic=topic, messages=len(letters), error=error)  # noqa: TRY400
            for letter in letters:
                state.held[letter.message_id] = letter.ack_id
            await self.subscription.extend([letter.ack_id for letter in letters], HOLD_SECONDS)
            return
        self.crash.reached(CrashPoint.AFTER_REPUBLISH_BEFORE_ACK)
        for letter in letters:
            state.done.add(letter.message_id)
            state.unacked.add(letter.message_id)
            state.tally.republished[group_of(letter, state.now)] += 1
        await self._ack(state, [(letter.message_id, letter.ack_id) for letter in letters])
        totals = state.tally.totals()
        log.info(
            "redrive.progress",
            topic=topic,
            republished=totals["republished"],
            acked=totals["acked"],
        )

    async def _ack(self, state: _State, letters: list[tuple[str, str]]) -> None:
        """Ack dead letters already republished, given as (message id, ack id); those handed
        out again are acked again (their first ack was lost)."""
        try:
            await self.subscription.ack([ack_id for _, ack_id in letters])
        except (aiohttp.ClientError, TimeoutError) as exc:
            # They come back after their ack deadline: this run acks them then, or the next
            # run republishes them again (a duplicate, harmless).
            log.warning("redrive.ack_failed", messages=len(letters), error=describe_error(exc))
            return
        for message_id, _ in letters:
            if message_id in state.unacked:
                state.unacked.discard(message_id)
                state.tally.acked += 1

    async def _give_back(self, state: _State) -> None:
        if not state.held:
            return
        try:
            await self.subscription.extend(list(state.held.values()), 0)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "redrive.held",
                messages=len(state.held),
                back_after_seconds=HOLD_SECONDS,
                error=describe_error(exc),
            )


def restored(letters: Sequence[DeadLetter]) -> list[OutgoingMessage]:
    return [letter.restored for letter in letters if letter.restored is not None]
