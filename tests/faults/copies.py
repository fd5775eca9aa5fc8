"""Copies on ``dead-letter`` and ``dlq-payments``, counted by source message, each explained.

A consumer publishes a dead letter, or the announcement of a parked payment, before it acks
the message. One that dies between that publish and the ack leaves the message unacked;
redelivered, it is published again. That copy is what at-least-once allows, and the docs
promise nothing else makes one (docs/design.md, "How it keeps data safe"). So each copy must
follow a death: of the publishes of one source message, sorted by Pub/Sub's publish time,
every one but the last must fall within the life of a run that could have handled the message
(dead letters: a consumer of the subscription it came from; announcements: a payment
consumer) and that was then killed, with the next one after that death. A copy that no death
explains is a duplicate the pipeline made by itself.

The same accounting gives the announcements' promise: every payment published for an order
that never came is parked, so every such message must have been announced at least once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from ecom_devtools.local.drain import Pulled
from tests.faults.services import Life

SLACK = 1.0
"""Seconds of leeway between Pub/Sub's publish times and this process's clock (one machine,
one clock; the emulator stamps a publish when it accepts it, a little after it was sent)."""

_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True, slots=True)
class Copies:
    distinct: int
    """Source messages seen."""
    copies: int
    """Publishes beyond the first one of each source message."""
    unexplained: tuple[str, ...]
    """Source ids with a copy that no death explains."""


def publish_time(message: Pulled) -> float:
    """Pub/Sub's publish time of ``message``, in seconds since the epoch."""
    text = _FRACTION.sub(r"\1", message.publish_time).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def count_copies(
    messages: Iterable[Pulled],
    lives: list[Life],
    *,
    source_of: Callable[[Pulled], str],
    handler_of: Callable[[Pulled], str],
) -> Copies:
    """Group ``messages`` by ``source_of`` and explain every copy by a death among ``lives`` of
    the service kind ``handler_of`` names for the message."""
    by_source: dict[str, list[Pulled]] = defaultdict(list)
    for message in messages:
        by_source[source_of(message)].append(message)
    unexplained = [
        source
        for source, published in by_source.items()
        if not _explained(
            sorted(publish_time(m) for m in published), handler_of(published[0]), lives
        )
    ]
    copies = sum(len(published) - 1 for published in by_source.values())
    return Copies(len(by_source), copies, tuple(sorted(unexplained)))


def _explained(times: list[float], kind: str, lives: list[Life]) -> bool:
    """Between each publish and the next, a run of ``kind`` alive at the first was killed."""
    deaths = [life for life in lives if life.kind == kind and life.killed]
    return all(
        any(
            life.started - SLACK <= first <= life.ended + SLACK and then >= life.ended - SLACK
            for life in deaths
        )
        for first, then in pairwise(times)
    )


def unannounced(announcements: Iterable[Pulled], orphan_message_ids: Iterable[str]) -> int:
    """How many messages of payments whose order never came were never announced."""
    announced = {m.attributes.get("source_message_id") for m in announcements}
    return sum(1 for message_id in orphan_message_ids if message_id not in announced)
