"""The dead-letter check of ``ecom-verify`` (``--dead-letter-subscription``): every malformed
message the manifest lists was dead-lettered with the reason it gives, and nothing else was.

**Matching.** A consumer dead-letters a message with the subscription it came from and its
Pub/Sub id in the attributes (``source_subscription``, ``source_message_id``: see
:mod:`ecom_shared.pubsub.deadletter`); the manifest names each malformed message by its topic
and the id Pub/Sub returned to the producer. The subscription gives the topic (the orders or the
payments subscription of the settings), so a dead letter is matched to its message by
``(topic, source_message_id)``; message ids are unique within a topic. Counted once per source:

- ``dead_letter_missing``: a malformed message of the manifest with no dead letter;
- ``dead_letter_wrong``: its dead letter gives another reason (``error_reason``);
- ``dead_letter_unexplained``: a dead letter for a message the manifest does not list as
  malformed (a valid message dead-lettered, another run's message), from a subscription that
  is not a consumer's, or with no source at all (one forwarded by a subscription's own
  dead-letter policy after too many deliveries: a failure the code did not foresee).

More dead letters for one source are *copies*, reported (``dead_letter_copies``) and not a
failure: a consumer stopped between its dead-letter publish and its ack publishes the message
again when it comes back.

**Reading without consuming.** The subscription is pulled with ``returnImmediately`` until
:data:`EMPTY_PULLS` answers in a row are empty; each message pulled is held for
:data:`HOLD_SECONDS` so the same one is not handed out twice during the read, and all are given
back at the end (ack deadline 0). Nothing is acked: the subscription holds the same messages
after a check, so the check can run again (``--wait``), and each time counts what is there. A
check that dies midway leaves the messages held until their hold ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import aiohttp

from ecom_shared.observability.logs import get_logger
from ecom_shared.pubsub.client import ReceivedMessage
from ecom_shared.settings import PubSubSettings
from ecom_verifier.checks import Report
from ecom_verifier.manifest_index import ManifestIndex

DEAD_LETTER_CATEGORIES: Final = (
    "dead_letter_missing",
    "dead_letter_wrong",
    "dead_letter_unexplained",
)
EMPTY_PULLS: Final = 3  # an immediate pull may answer empty once while messages wait
HOLD_SECONDS: Final = 120
PULL_SIZE: Final = 1000
_EMPTY_PAUSE: Final = 0.1
_FORWARDED_FROM: Final = "CloudPubSubDeadLetterSourceSubscription"
_FORWARDED_AFTER: Final = "CloudPubSubDeadLetterSourceDeliveryCount"

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What the check needs of one message on the dead-letter subscription."""

    message_id: str  # the dead letter's own id
    source_subscription: str | None = None
    source_message_id: str | None = None
    reason: str | None = None
    forwarded_from: str | None = None  # set by Pub/Sub's dead-letter policy
    forwarded_after: str | None = None  # deliveries before Pub/Sub forwarded it

    @classmethod
    def from_attributes(cls, message_id: str, attributes: Mapping[str, str]) -> DeadLetter:
        return cls(
            message_id,
            attributes.get("source_subscription"),
            attributes.get("source_message_id"),
            attributes.get("error_reason"),
            attributes.get(_FORWARDED_FROM),
            attributes.get(_FORWARDED_AFTER),
        )


class DeadLetterSource(Protocol):
    name: str

    async def read(self) -> list[DeadLetter]:
        """Every message the subscription holds now, left there."""
        ...


class Peekable(Protocol):
    """What reading without consuming needs of a subscription
    (:class:`~ecom_shared.pubsub.client.PubSubSubscription` has it)."""

    name: str

    async def pull_now(self, max_messages: int) -> list[ReceivedMessage]: ...

    async def extend(self, ack_ids: Sequence[str], seconds: int) -> None: ...


class SubscriptionDeadLetters:
    """A subscription of the dead-letter topic, read without consuming it."""

    def __init__(self, subscription: Peekable) -> None:
        self._subscription = subscription
        self.name = subscription.name

    async def read(self) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        held: list[str] = []
        try:
            empty = 0
            while empty < EMPTY_PULLS:
                batch = await self._subscription.pull_now(PULL_SIZE)
                if not batch:
                    empty += 1
                    await asyncio.sleep(_EMPTY_PAUSE)
                    continue
                empty = 0
                ack_ids = [m.ack_id for m in batch]
                await self._subscription.extend(ack_ids, HOLD_SECONDS)
                held += ack_ids
                letters += (DeadLetter.from_attributes(m.message_id, m.attributes) for m in batch)
        finally:
            await self._give_back(held)
        return letters

    async def _give_back(self, held: list[str]) -> None:
        if not held:
            return
        try:
            await self._subscription.extend(held, 0)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning(
                "verify.dead_letters_held",
                subscription=self.name,
                messages=len(held),
                back_after_seconds=HOLD_SECONDS,
                error=type(exc).__name__,
            )


@dataclass(frozen=True, slots=True)
class DeadLetterCheck:
    """Where to read the dead letters, and which manifest topic each consumer subscription
    reads (the manifest says ``orders`` or ``payments``)."""

    source: DeadLetterSource
    topics: Mapping[str, str]

    @classmethod
    def of(cls, source: DeadLetterSource, pubsub: PubSubSettings) -> DeadLetterCheck:
        return cls(
            source, {pubsub.orders_subscription: "orders", pubsub.payments_subscription: "payments"}
        )


async def check_dead_letters(check: DeadLetterCheck, index: ManifestIndex, report: Report) -> None:
    """Read the dead-letter subscription and add its categories to ``report``."""
    judge_dead_letters(await check.source.read(), index, check.topics, report)


def judge_dead_letters(
    letters: Iterable[DeadLetter], index: ManifestIndex, topics: Mapping[str, str], report: Report
) -> None:
    report.counts.update(dict.fromkeys(DEAD_LETTER_CATEGORIES, 0))
    report.observed.update(dead_letters_read=0, dead_letter_copies=0)
    own_ids: set[str] = set()
    seen: set[tuple[str, str]] = set()
    for letter in letters:
        if letter.message_id in own_ids:
            continue  # handed out twice during the read
        own_ids.add(letter.message_id)
        report.observed["dead_letters_read"] += 1
        source = _source(letter, topics)
        if isinstance(source, str):
            report.add("dead_letter_unexplained", source)
        elif source in seen:
            report.observed["dead_letter_copies"] += 1
        else:
            seen.add(source)
            _judge_one(letter, source, index, report)
    for topic, message_id, reason in index.malformed_messages():
        if (topic, message_id) not in seen:
            report.add("dead_letter_missing", f"{topic} message {message_id} ({reason})")
    report.totals["malformed_named"] = index.totals.malformed - index.totals.malformed_unnamed


def _source(letter: DeadLetter, topics: Mapping[str, str]) -> tuple[str, str] | str:
    """The dead-lettered message as ``(topic, message id)``, or why it cannot be told."""
    if letter.source_message_id is None:
        if letter.forwarded_from is not None:
            return (
                f"dead letter {letter.message_id}: forwarded by the dead-letter policy of "
                f"{letter.forwarded_from} after {letter.forwarded_after or '?'} deliveries"
            )
        return f"dead letter {letter.message_id}: names no source message"
    topic = topics.get(letter.source_subscription or "")
    if topic is None:
        return (
            f"message {letter.source_message_id} of subscription "
            f"{letter.source_subscription!r}, which is not a consumer's"
        )
    return topic, letter.source_message_id


def _judge_one(
    letter: DeadLetter, source: tuple[str, str], index: ManifestIndex, report: Report
) -> None:
    topic, message_id = source
    want = index.malformed_reason(topic, message_id)
    if want is None:
        why = f"{topic} message {message_id} ({letter.reason}): not malformed in the manifest"
        report.add("dead_letter_unexplained", why)
    elif letter.reason != want:
        report.add(
            "dead_letter_wrong",
            f"{topic} message {message_id}: {letter.reason!r} (manifest {want!r})",
        )
