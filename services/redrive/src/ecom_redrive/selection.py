"""Which dead letters a run takes, and the counts it reports, grouped by reason, source
subscription and age bucket.

A dead letter's age is how long ago it was dead-lettered (its own ``publishTime``), which is what
an operator knows ("since the release an hour ago"). A selection with no criterion takes every
dead letter that can be republished; the command asks for ``--all`` to say so.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from ecom_redrive.letters import UNKNOWN, DeadLetter

AGE_BUCKETS: Final = (
    (timedelta(hours=1), "<1h"),
    (timedelta(days=1), "1h-1d"),
    (timedelta(days=7), "1d-7d"),
)
"""Upper bounds of the age buckets; anything older is ``>=7d`` (Pub/Sub keeps a message at most
seven days on a subscription, unless it is configured to keep them longer)."""
OLDEST: Final = ">=7d"
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d``; raises ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 2h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def age_bucket(age: timedelta) -> str:
    for bound, name in AGE_BUCKETS:
        if age < bound:
            return name
    return OLDEST


@dataclass(frozen=True, slots=True)
class Selection:
    """What a run takes: every criterion given must hold (reasons and sources: any of them)."""

    reasons: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    older_than: timedelta | None = None
    newer_than: timedelta | None = None
    limit: int | None = None

    def matches(self, letter: DeadLetter, now: datetime) -> bool:
        """Whether ``letter`` is one this run takes (the limit aside)."""
        if letter.restored is None:
            return False
        age = now - letter.dead_lettered_at
        return (
            (not self.reasons or letter.reason in self.reasons)
            and (not self.sources or letter.source in self.sources)
            and (self.older_than is None or age >= self.older_than)
            and (self.newer_than is None or age < self.newer_than)
        )

    @property
    def is_everything(self) -> bool:
        return not (self.reasons or self.sources or self.older_than or self.newer_than)


Group = tuple[str, str, str]
"""(reason, source subscription, age bucket)."""


def group_of(letter: DeadLetter, now: datetime) -> Group:
    return letter.reason, letter.source or UNKNOWN, age_bucket(now - letter.dead_lettered_at)


@dataclass(slots=True)
class Tally:
    """What a run saw and did; ``waiting`` counts each dead letter once, however often it was
    handed out during the run."""

    waiting: Counter[Group] = field(default_factory=Counter)
    selected: Counter[Group] = field(default_factory=Counter)
    republished: Counter[Group] = field(default_factory=Counter)
    acked: int = 0
    failed: int = 0  # selected, but their republish or their ack failed
    not_redrivable: Counter[str] = field(default_factory=Counter)  # why -> count

    def saw(self, letter: DeadLetter, now: datetime) -> None:
        self.waiting[group_of(letter, now)] += 1
        if letter.restored is None:
            self.not_redrivable[letter.why_not] += 1

    def totals(self) -> dict[str, int]:
        seen = self.waiting.total()
        return {
            "waiting": seen,
            "selected": self.selected.total(),
            "republished": self.republished.total(),
            "acked": self.acked,
            "left": seen - self.acked,
            "failed": self.failed,
            "not_redrivable": self.not_redrivable.total(),
        }

    def groups(self) -> Iterable[tuple[Group, int, int, int]]:
        """(group, waiting, selected, republished), sorted by group."""
        for group in sorted(self.waiting):
            yield group, self.waiting[group], self.selected[group], self.republished[group]
