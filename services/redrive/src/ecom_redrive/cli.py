"""``ecom-redrive``: list the dead letters, and republish the selected ones where they came from.

Lists what waits on the dead-letter subscription by reason, source subscription and age;
republishes the dead letters it selects to the topic each came from, body and original
attributes byte for byte, and acks each only after its republish succeeded. ``--dry-run``
changes nothing. Exit status: 0 when every selected dead letter was republished and acked,
1 when one failed (or the run was stopped), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta
from typing import Final

import aiohttp
from pydantic import Field

from ecom_redrive.redrive import Outcome, Redrive
from ecom_redrive.selection import Selection, parse_duration
from ecom_redrive.topics import SubscriptionTopics, settings_topics
from ecom_shared.error_text import describe_error
from ecom_shared.observability.logs import configure_logging, get_logger
from ecom_shared.pubsub.client import PubSubPublisher, PubSubSubscription, http_session
from ecom_shared.runtime.faults import CrashHook, FaultSettings
from ecom_shared.runtime.service import load_settings, run_async
from ecom_shared.settings import PubSubServiceSettings

log = get_logger(__name__)
_TEXT_COLUMNS: Final = 3  # reason, source, age; the counts are right-aligned


class RedriveSettings(PubSubServiceSettings):
    """Pub/Sub and logging (the HTTP section is read and not served: a run is short)."""

    # For the fault-injection tests only: ecom_shared.runtime.faults.
    faults: FaultSettings = Field(default_factory=FaultSettings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecom-redrive",
        description="List the dead letters, and republish the selected ones where they came from.",
        epilog="Durations: 90s, 30m, 2h, 7d. An age is how long ago a message was dead-lettered.",
    )
    parser.add_argument("--dry-run", action="store_true", help="list only; change nothing")
    parser.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="REASON",
        help="take this reason (repeatable)",
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="SUBSCRIPTION",
        help="take this source subscription (repeatable)",
    )
    parser.add_argument(
        "--older-than", type=_duration, metavar="DURATION", help="take those dead-lettered before"
    )
    parser.add_argument(
        "--newer-than", type=_duration, metavar="DURATION", help="take those dead-lettered since"
    )
    parser.add_argument(
        "--limit", type=_positive, metavar="N", help="take at most this many, then stop"
    )
    parser.add_argument("--all", action="store_true", help="take every dead letter")
    parser.add_argument(
        "--subscription",
        metavar="NAME",
        help="the dead-letter subscription (ECOM_PUBSUB__DEAD_LETTER_SUBSCRIPTION)",
    )
    parser.add_argument("--json", action="store_true", help="the report as one JSON object")
    return parser


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def selection_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Selection:
    selection = Selection(
        reasons=frozenset(args.reason),
        sources=frozenset(args.source),
        older_than=args.older_than,
        newer_than=args.newer_than,
        limit=args.limit,
    )
    if args.all and not selection.is_everything:
        parser.error("--all takes every dead letter: give it alone, or give the criteria")
    if selection.is_everything and not (args.all or args.dry_run):
        parser.error(
            "say what to redrive (--reason, --source, --older-than, --newer-than) or --all; "
            "--dry-run lists what waits"
        )
    return selection


def render(outcome: Outcome, *, dry_run: bool) -> str:
    tally = outcome.tally
    rows = [("reason", "source", "age", "waiting", "selected", "republished")]
    rows += [(*group, str(w), str(s), str(r)) for group, w, s, r in tally.groups()]
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = [
        "  ".join(
            cell.ljust(w) if i < _TEXT_COLUMNS else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.append(", ".join(f"{name.replace('_', ' ')} {n}" for name, n in tally.totals().items()))
    lines += [f"not redrivable: {n} ({why})" for why, n in sorted(tally.not_redrivable.items())]
    if dry_run:
        lines.append("dry run: nothing was republished or acked")
    if outcome.stopped:
        lines.append("stopped before the subscription was read to its end")
    return "\n".join(lines)


def as_json(outcome: Outcome, *, dry_run: bool, subscription: str) -> str:
    tally = outcome.tally
    groups = [
        {"reason": g[0], "source": g[1], "age": g[2], "waiting": w, "selected": s, "republished": r}
        for g, w, s, r in tally.groups()
    ]
    report = {
        "subscription": subscription,
        "dry_run": dry_run,
        "ok": outcome.ok,
        "stopped": outcome.stopped,
        "totals": tally.totals(),
        "groups": groups,
        "not_redrivable": dict(tally.not_redrivable),
    }
    return json.dumps(report, ensure_ascii=False)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    selection = selection_of(args, parser)
    settings = load_settings(RedriveSettings)
    configure_logging(settings.log, service="redrive")
    p = settings.pubsub
    subscription = args.subscription or p.dead_letter_subscription

    async def run(stop: asyncio.Event) -> int:
        crash = CrashHook.from_settings(settings.faults)
        async with http_session() as session:
            redrive = Redrive(
                PubSubSubscription(session, p.project_id, subscription),
                PubSubPublisher(session, p.project_id, timeout=p.request_timeout_seconds),
                SubscriptionTopics(session, p.project_id, settings_topics(p)),
                selection,
                dry_run=args.dry_run,
                crash=crash,
            )
            try:
                outcome = await redrive.run(stop)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = describe_error(exc)  # never a traceback: it would print request URLs
                log.error("redrive.failed", subscription=subscription, error=error)  # noqa: TRY400
                return 1
        log.info("redrive.finished", dry_run=args.dry_run, ok=outcome.ok, **outcome.tally.totals())
        text = (
            as_json(outcome, dry_run=args.dry_run, subscription=subscription)
            if args.json
            else render(outcome, dry_run=args.dry_run)
        )
        sys.stdout.write(text + "\n")
        return 0 if outcome.ok else 1

    return run_async(run)


if __name__ == "__main__":
    sys.exit(main())
