"""What one fault scenario measured, in the figures of the issue's table, as one JSON line.

The verifier's categories are folded into three figures:

- **lost**: something the manifest says must be there is not: ``orders_missing``,
  ``payments_missing``, ``parked_missing``, plus malformed messages missing from the
  dead-letter subscription and payments of orders that never came that were never announced on
  ``dlq-payments`` (``unannounced``);
- **duplicated**: one fact present twice, or an effect nothing in the manifest explains (what a
  redelivery or replay would leave behind in keyed tables): ``rows_unexplained``,
  ``payments_unexplained``, ``parked_but_order_exists`` (a payment joined and still parked),
  rows of the scenario's own keyspace outside the manifest's ids (``out_of_scope``), and copies
  on ``dead-letter`` or ``dlq-payments`` that no death explains (``unexplained_copies``, see
  :mod:`tests.faults.copies`);
- **wrong**: every other category (``orders_wrong``, ``payments_wrong``, and any category the
  verifier adds later), plus messages on the dead-letter subscription that the manifest does
  not list as malformed (a healthy message there is wrong, whatever the reason).

A second copy of one dead-lettered message or announcement (same ``source_message_id``) is
the publish redelivered, which at-least-once allows when a consumer dies between that publish
and its ack; such copies are reported apart (``dead_letter_copies``, ``announcement_copies``),
each must be explained by a death, and each scenario says whether there may be any.
``republished`` counts what a scenario published again itself (after an emulator restart).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

LOST = frozenset({"orders_missing", "payments_missing", "parked_missing"})
DUPLICATED = frozenset({"rows_unexplained", "payments_unexplained", "parked_but_order_exists"})
REPORT_ENV = "ECOM_FAULT_REPORT"
LINE_PREFIX = "FAULT-REPORT "
EMITTED: list[FaultReport] = []  # this session's reports, for the terminal summary (conftest)


@dataclass(frozen=True, slots=True)
class DeadLetterCheck:
    """What the dead-letter subscription held against what the manifest says was malformed,
    keyed ``topic/reason`` and counted once per source message."""

    expected: dict[str, int]
    got: dict[str, int]
    copies: int

    @property
    def missing(self) -> int:
        return sum(max(0, n - self.got.get(k, 0)) for k, n in self.expected.items())

    @property
    def unexpected(self) -> int:
        return sum(max(0, n - self.expected.get(k, 0)) for k, n in self.got.items())


@dataclass(frozen=True, slots=True)
class FaultReport:
    scenario: str
    events: int
    faults: int
    lost: int
    wrong: int
    duplicated: int
    seconds: float
    fault_kinds: dict[str, int] = field(default_factory=dict)
    verifier: dict[str, int] = field(default_factory=dict)
    dead_letter_expected: dict[str, int] = field(default_factory=dict)
    dead_letter_got: dict[str, int] = field(default_factory=dict)
    dead_letter_copies: int = 0
    announced: int = 0
    announcement_copies: int = 0
    unexplained_copies: int = 0
    unannounced: int = 0
    out_of_scope: int = 0
    republished: int = 0
    peeks: int = 0
    kills: list[dict[str, object]] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)
    exit_codes: dict[str, list[int | None]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.lost == self.wrong == self.duplicated == 0

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=False)


def fold(
    scenario: str,
    counts: dict[str, int],
    dead: DeadLetterCheck,
    *,
    unexplained_copies: int = 0,
    unannounced: int = 0,
    out_of_scope: int = 0,
    **figures: object,
) -> FaultReport:
    """The table's figures from the verifier's ``counts``, the dead-letter check and the
    copies and announcements accounting."""
    lost = sum(n for name, n in counts.items() if name in LOST) + dead.missing + unannounced
    duplicated = sum(n for name, n in counts.items() if name in DUPLICATED)
    wrong = sum(n for name, n in counts.items() if name not in LOST | DUPLICATED)
    return FaultReport(
        scenario=scenario,
        lost=lost,
        wrong=wrong + dead.unexpected,
        duplicated=duplicated + unexplained_copies + out_of_scope,
        unexplained_copies=unexplained_copies,
        unannounced=unannounced,
        out_of_scope=out_of_scope,
        verifier=dict(counts),
        dead_letter_expected=dead.expected,
        dead_letter_got=dead.got,
        dead_letter_copies=dead.copies,
        **figures,  # type: ignore[arg-type]
    )


def emit(report: FaultReport, fallback: Path) -> Path:
    """Print the report's line and append it to ``$ECOM_FAULT_REPORT`` (else ``fallback``)."""
    line = report.line()
    EMITTED.append(report)
    print(LINE_PREFIX + line, flush=True)
    target = Path(os.environ.get(REPORT_ENV) or fallback)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return target


def table(reports: list[FaultReport]) -> list[str]:
    """The issue's table: scenario, events, faults injected, lost, wrong, duplicated, duration;
    then what was published again, and the copies on dead-letter and dlq-payments (see the
    module's note)."""
    head = (
        f"{'scenario':<38} {'events':>7} {'faults':>6} {'lost':>5} {'wrong':>5} {'dup':>5} "
        f"{'s':>6} {'republished':>11} {'dl copies':>9} {'ann copies':>10}"
    )
    rows = [
        f"{r.scenario:<38} {r.events:>7} {r.faults:>6} {r.lost:>5} {r.wrong:>5} "
        f"{r.duplicated:>5} {r.seconds:>6.1f} {r.republished:>11} {r.dead_letter_copies:>9} "
        f"{r.announcement_copies:>10}"
        for r in reports
    ]
    return [head, *rows]
