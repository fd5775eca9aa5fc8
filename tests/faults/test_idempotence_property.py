"""Scenario 8 of issue 5: whatever the interleaving and however often each message comes, the
final tables are the same.

Hypothesis draws a small stream (orders with re-emitted versions, payments, failed payments and
their retries, payments whose order never comes, malformed bodies), delivers every message one
to three times in a random order, in concurrent groups, with DLQ worker passes (zero to two at
once) racing the handlers, then lets the worker run its next pass. The services' own handlers
and the worker's reconcile run in this process against the real Cassandra; the same stream
delivered once each, in publish order, into another keyspace is the reference.

Two checks, because the reference alone is the code under test compared with itself (a bug
the handlers make in every order would pass):

- both runs must end in the state :mod:`tests.faults.expected` works out from the stream
  alone (the winning versions stored, every payment of a stored order joined, exactly the
  orphans parked, nothing else);
- the interleaved run's tables must be identical to the reference's, write times included
  (see ``interleaving.ROW_COLUMNS`` for the two ingestion-metadata columns left out and why).

Each example uses ids no other example uses. Examples are derandomized (the same examples on
every run, so a failure comes back); a failing example prints its stream, message by message,
and its drawn schedule, and the ``@reproduce_failure`` blob that replays it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from ecom_shared.pubsub.provision import provision
from ecom_shared.runtime.resources import open_resources
from tests.faults.expected import differences, expected_state
from tests.faults.interleaving import Delivery, Pipeline, Stream, dump, streams
from tests.faults.report import FaultReport, emit
from tests.infra import InfraUnderTest

# Generous: each scenario waits on its own deadlines, and this machine's 2 cores are shared.
pytestmark = pytest.mark.timeout(600)

_id_bases = itertools.count(1)


@dataclass
class Tally:
    """Over all examples: deliveries made, faults injected (redeliveries, messages handled
    out of publish order, DLQ passes racing the handlers), and rows that differed."""

    events: int = 0
    faults: dict[str, int] = field(
        default_factory=lambda: {"redelivery": 0, "out of order": 0, "racing DLQ pass": 0}
    )
    lost: int = 0
    wrong: int = 0
    duplicated: int = 0
    started: float = field(default_factory=time.monotonic)

    def count(self, stream: Stream, steps: list[tuple[list[Delivery], int]]) -> None:
        played = [message for deliveries, _ in steps for _, message, _ in deliveries]
        self.events += len(played)
        self.faults["redelivery"] += len(played) - len(stream.messages)
        first_seen = list(dict.fromkeys(m.message_id for m in played))
        in_order = [m.message_id for _, m, _ in stream.messages]
        self.faults["out of order"] += sum(
            a != b for a, b in zip(first_seen, in_order, strict=True)
        )
        self.faults["racing DLQ pass"] += sum(passes for _, passes in steps)

    def compare(self, got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
        """Count rows lost, wrong and extra, keyed by their key columns."""
        key = ("order_id", "payment_id")
        got_by = {tuple(r.get(k) for k in key): r for r in got}
        want_by = {tuple(r.get(k) for k in key): r for r in want}
        self.lost += len(want_by.keys() - got_by.keys())
        self.duplicated += len(got_by.keys() - want_by.keys()) + len(got) - len(got_by)
        self.wrong += sum(got_by[k] != want_by[k] for k in got_by.keys() & want_by.keys())


@pytest.fixture(scope="module")
def tally(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tally]:
    """The scenario's report line, written when every example has run."""
    counted = Tally()
    yield counted
    report = FaultReport(
        scenario="8 property: interleavings+redelivery",
        events=counted.events,
        faults=sum(counted.faults.values()),
        seconds=round(time.monotonic() - counted.started, 1),
        fault_kinds=counted.faults,
        lost=counted.lost,
        wrong=counted.wrong,
        duplicated=counted.duplicated,
    )
    emit(report, tmp_path_factory.mktemp("property") / "fault-report.jsonl")


@pytest.fixture(scope="module")
async def pipelines(infra: InfraUnderTest) -> AsyncIterator[tuple[Pipeline, Pipeline]]:
    """The reference store and the store under random delivery, each in its own keyspace."""
    reference, shuffled = infra.settings(), infra.settings()
    for each in (reference, shuffled):
        await provision(each)
    async with open_resources(reference) as one, open_resources(shuffled) as other:
        yield Pipeline(one), Pipeline(other)


def schedule(data: st.DataObject, stream: Stream) -> list[tuple[list[Delivery], int]]:
    """Every message 1-3 times, shuffled, cut into concurrent groups, each with 0-2 passes."""
    deliveries = [
        delivery
        for delivery in stream.messages
        for _ in range(data.draw(st.integers(1, 3), label="copies"))
    ]
    shuffled = data.draw(st.permutations(deliveries), label="order")
    steps = []
    while shuffled:
        size = data.draw(st.integers(1, 4), label="group")
        steps.append((shuffled[:size], data.draw(st.integers(0, 2), label="passes")))
        shuffled = shuffled[size:]
    return steps


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_interleaving_and_redelivery_gives_the_same_tables(
    pipelines: tuple[Pipeline, Pipeline], tally: Tally, data: st.DataObject
) -> None:
    reference, shuffled = pipelines
    stream = data.draw(streams(next(_id_bases) * 1000), label="stream")
    note(f"stream, in publish order:\n{stream.describe()}")
    steps = schedule(data, stream)
    expected = expected_state(stream)
    await reference.in_order(stream)
    await shuffled.play(steps)
    expected_rows, expected_parked = await dump(reference.resources, stream)
    rows, parked = await dump(shuffled.resources, stream)
    tally.count(stream, steps)
    tally.compare(rows + parked, expected_rows + expected_parked)
    wrong = differences(expected, expected_rows, expected_parked)
    assert not wrong, "in-order run differs from the stream's expected state:\n" + "\n".join(wrong)
    wrong = differences(expected, rows, parked)
    assert not wrong, "interleaved run differs from the stream's expected state:\n" + "\n".join(
        wrong
    )
    assert rows == expected_rows
    assert parked == expected_parked
