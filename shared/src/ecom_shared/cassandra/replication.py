"""The keyspace's replication, written as the CQL map operators know from ``DESCRIBE KEYSPACE``.

The setting stays one CQL map string (``{'class': 'NetworkTopologyStrategy', 'dc1': 3}``), but
it is parsed strictly and rendered again from its parts, so the text that reaches
``CREATE KEYSPACE`` is built by us from checked names and numbers, never copied from input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Strategy = Literal["SimpleStrategy", "NetworkTopologyStrategy"]
STRATEGIES: tuple[Strategy, ...] = ("SimpleStrategy", "NetworkTopologyStrategy")
_PACKAGE = "org.apache.cassandra.locator."
DEFAULT_FACTOR = "replication_factor"
"""SimpleStrategy's factor; under NetworkTopologyStrategy, the factor of every DC not named."""

_ENTRY = re.compile(
    r"'(?P<key>[A-Za-z0-9_.\-]+)'\s*:\s*(?:'(?P<text>[A-Za-z0-9_.]+)'|(?P<num>\d+))"
)


@dataclass(frozen=True)
class Replication:
    """A replication strategy and its factors (per data centre, or ``replication_factor``)."""

    strategy: Strategy
    factors: tuple[tuple[str, int], ...]

    def cql(self) -> str:
        """The CQL map, e.g. ``{'class': 'NetworkTopologyStrategy', 'dc1': 3}``."""
        entries = [f"'class': '{self.strategy}'"]
        entries += [f"'{name}': {factor}" for name, factor in self.factors]
        return "{" + ", ".join(entries) + "}"

    def has_replicas_in(self, dc: str) -> bool:
        """True if data has replicas in ``dc`` (always under SimpleStrategy, which has no DCs)."""
        names = dict(self.factors)
        if self.strategy == "SimpleStrategy" or DEFAULT_FACTOR in names:
            return True
        return names.get(dc, 0) > 0


def parse_replication(text: str) -> Replication:
    """Parse a CQL replication map; raise ValueError saying what is wrong."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ValueError(
            "replication must be a CQL map in braces, e.g. {'class': 'SimpleStrategy'}"
        )
    entries: dict[str, str] = {}
    for raw in filter(None, (part.strip() for part in body[1:-1].split(","))):
        match = _ENTRY.fullmatch(raw)
        if match is None:
            raise ValueError(f"replication entry {raw!r} is not 'name': value")
        if match["key"] in entries:
            raise ValueError(f"replication names {match['key']!r} twice")
        entries[match["key"]] = match["text"] or match["num"]
    strategy = _strategy(entries.pop("class", ""))
    factors = tuple((name, _factor(name, value)) for name, value in entries.items())
    if strategy == "SimpleStrategy" and [name for name, _ in factors] != [DEFAULT_FACTOR]:
        raise ValueError("SimpleStrategy takes exactly one entry, 'replication_factor'")
    if strategy == "NetworkTopologyStrategy" and not factors:
        raise ValueError("NetworkTopologyStrategy needs a factor per data centre, e.g. 'dc1': 3")
    return Replication(strategy, factors)


def _strategy(name: str) -> Strategy:
    short = name.removeprefix(_PACKAGE)
    for strategy in STRATEGIES:
        if short == strategy:
            return strategy
    raise ValueError(
        f"replication class must be SimpleStrategy or NetworkTopologyStrategy, not {name!r}"
    )


def _factor(name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError(
            f"replication factor of {name!r} must be a whole number >= 1, not {value!r}"
        )
    return int(value)
