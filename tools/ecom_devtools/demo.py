"""``ecom-demo``: the whole pipeline on this machine, from an empty start to a checked summary.

Starts Cassandra 5.0 and the Pub/Sub emulator (unless they already run in ``--dir``), creates
topics, subscriptions and schema, runs the four services as processes on a generated stream,
waits until the tables match the producer's manifest, prints a summary checked against that
manifest, then stops what it started (``--keep`` leaves the infrastructure and data running).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ecom_devtools.local.cassandra import CassandraNode
from ecom_devtools.local.cli import env_for
from ecom_devtools.local.drain import Pulled, drain_now
from ecom_devtools.local.emulator import PubSubEmulator
from ecom_devtools.local.infra import InfraConfig, load_config, save_config, wait_all_ready
from ecom_devtools.local.services import ServiceProcess
from ecom_shared.cassandra.session import cassandra_session
from ecom_shared.observability.logs import configure_logging
from ecom_shared.pubsub.provision import provision
from ecom_shared.settings import LogSettings, ServiceSettings
from ecom_verifier.manifest import ExpectedState, load_expected
from ecom_verifier.verify import Report, verify

SERVICE_GRACE_SECONDS = 30.0


def say(message: str) -> None:
    print(message, flush=True)


@dataclass(frozen=True)
class Run:
    dir: Path
    manifest: Path
    logs: Path

    @staticmethod
    def create(base: Path) -> Run:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        run_dir = base / "runs" / stamp
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        return Run(run_dir, run_dir / "manifest.jsonl", run_dir / "logs")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ecom-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s, 0 = unlimited")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--payments-first", type=float, default=0.3)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave Cassandra and the emulator running, with the data",
    )
    parser.add_argument("--dir", type=Path, default=Path(".local") / "demo")
    parser.add_argument("--cql-port", type=int, default=9042)
    parser.add_argument("--storage-port", type=int, default=7000)
    parser.add_argument("--jmx-port", type=int, default=7199)
    parser.add_argument("--pubsub-port", type=int, default=8085)
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=300.0,
        help="seconds to wait, after publishing, for the tables to match",
    )
    parser.add_argument("--json", type=Path, help="also write the summary as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(LogSettings(level="WARNING", json_output=False), service="demo")
    return asyncio.run(run(args))


async def run(args: argparse.Namespace) -> int:
    base = args.dir.resolve()
    config = load_config(base) or InfraConfig(
        base, args.cql_port, args.storage_port, args.jmx_port, args.pubsub_port
    )
    servers: list[CassandraNode | PubSubEmulator] = [
        CassandraNode(config.cassandra()),
        PubSubEmulator(config.emulator()),
    ]
    started = await start_infra(config, servers)
    ok = False
    try:
        ok = await run_pipeline(args, config)
    finally:
        if args.keep:
            explain_keep(config)
        else:
            for server in reversed(started):
                server.stop()
            say(
                f"stopped what the demo started ({', '.join(type(s).__name__ for s in started)})"
                if started
                else "left the already running infrastructure running"
            )
    return 0 if ok else 1


async def start_infra(
    config: InfraConfig, servers: list[CassandraNode | PubSubEmulator]
) -> list[CassandraNode | PubSubEmulator]:
    say("[1/5] starting Cassandra 5.0 and the Pub/Sub emulator (first run downloads Cassandra)")
    save_config(config)
    started = []
    for server in servers:
        if not server.is_running():
            await asyncio.to_thread(server.start)
            started.append(server)
    cassandra_s, emulator_s = await wait_all_ready(*servers)  # type: ignore[arg-type]
    say(
        f"      Cassandra answers CQL on 127.0.0.1:{config.cql_port} "
        f"({cassandra_s:.1f} s), emulator on 127.0.0.1:{config.pubsub_port} ({emulator_s:.1f} s)"
    )
    return started


async def run_pipeline(args: argparse.Namespace, config: InfraConfig) -> bool:
    infra_env = env_for(config.cql_port, f"127.0.0.1:{config.pubsub_port}")
    os.environ.update(infra_env)
    settings = ServiceSettings()
    say("[2/5] creating topics, subscriptions (with dead-letter policies) and the schema")
    await provision(settings)
    run = Run.create(config.base_dir)
    # Four services on one host: each picks a free metrics and health port, shown below.
    env = {**os.environ, **infra_env, "ECOM_HTTP__PORT": "0"}
    consumers = [
        ServiceProcess("order-consumer", [], run.logs / "order-consumer.log"),
        ServiceProcess("payment-consumer", [], run.logs / "payment-consumer.log"),
        ServiceProcess(
            "dlq-worker", [], run.logs / "dlq-worker.log", {"ECOM_WORKER__INTERVAL_SECONDS": "2"}
        ),
    ]
    producer = ServiceProcess(
        "producer",
        [
            "--orders",
            str(args.orders),
            "--rate",
            str(args.rate),
            "--seed",
            str(args.seed),
            "--payments-first",
            str(args.payments_first),
            "--manifest",
            str(run.manifest),
        ],
        run.logs / "producer.log",
    )
    say(f"[3/5] running the four services; logs in {run.logs}")
    for service in consumers:
        service.start(env)
    exit_codes: dict[str, int | None] = {}
    try:
        await show_ports(consumers)
        started = time.monotonic()
        producer.start(env)
        await follow_producer(producer)
        exit_codes["producer"] = producer.wait(10)
        expected = load_expected(run.manifest)
        say(f"      published {expected.published} messages in {time.monotonic() - started:.1f} s")
        say("[4/5] waiting until the tables match the producer's manifest")
        report = await settle(settings, expected, args.settle_timeout)
        settled = time.monotonic() - started
    finally:
        for service in consumers:
            exit_codes[service.name] = service.stop(SERVICE_GRACE_SECONDS)
    say("[5/5] summary")
    summary = await summarise(
        settings,
        config,
        run,
        expected=expected,
        report=report,
        exit_codes=exit_codes,
        seconds=settled,
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return bool(summary["ok"])


async def show_ports(services: list[ServiceProcess]) -> None:
    """Say where each service serves /metrics, /livez and /readyz."""
    for service in services:
        port = await service.wait_served_port()
        say(f"      {service.name:17} metrics and health on http://127.0.0.1:{port}/metrics")


async def follow_producer(producer: ServiceProcess) -> None:
    """Show the producer's progress lines until it exits."""
    while producer.poll() is None:
        await asyncio.sleep(2)
        line = last_event(producer.log_path, "producer.progress")
        if line:
            say(
                f"      published {line.get('published', 0):>8} messages "
                f"({line.get('rate_per_s', 0):.0f}/s)"
            )


def last_event(log_path: Path, event: str) -> dict[str, object] | None:
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if f'"{event}"' in line:
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(parsed, dict):
                return parsed
    return None


async def settle(settings: ServiceSettings, expected: ExpectedState, timeout: float) -> Report:
    deadline = time.monotonic() + timeout
    async with cassandra_session(settings.cassandra) as session:
        while True:
            report = await verify(session, settings.cassandra, expected)
            seen = report.observed
            say(
                f"      orders stored {seen['orders_stored']}/{len(expected.orders)}, payments "
                f"joined {joined(seen)}"
                f"/{len(expected.payments)}, parked {seen['still_parked']}/{len(expected.parked)}"
            )
            if report.ok or time.monotonic() > deadline:
                return report
            await asyncio.sleep(2)


def joined(seen: dict[str, int]) -> int:
    """Payments in their rows, whichever way they got there."""
    return sum(
        seen[k] for k in ("joined_on_stream", "joined_by_order_consumer", "joined_by_dlq_worker")
    )


async def summarise(
    settings: ServiceSettings,
    config: InfraConfig,
    run: Run,
    *,
    expected: ExpectedState,
    report: Report,
    exit_codes: dict[str, int | None],
    seconds: float,
) -> dict[str, object]:
    host = f"127.0.0.1:{config.pubsub_port}"
    dead = await drain_now(
        host, settings.pubsub.project_id, settings.pubsub.dead_letter_subscription
    )
    announced = await drain_now(
        host, settings.pubsub.project_id, settings.pubsub.dlq_payments_subscription
    )
    keep_dead_letters(run.dir / "dead-letter.jsonl", dead)
    parked_ever = {pid for pid in map(_payment_id, announced) if pid in expected.payment_ids}
    dead_reasons = Counter(m.attributes.get("error_reason", "?") for m in dead)
    seen = report.observed
    rows = [
        ("orders stored", seen["orders_stored"], len(expected.orders)),
        ("payments joined on the stream", seen["joined_on_stream"], None),
        ("payments parked (announced on dlq-payments)", len(parked_ever), None),
        ("payments joined as their order came", seen["joined_by_order_consumer"], None),
        ("payments reconciled by the DLQ worker", seen["joined_by_dlq_worker"], None),
        ("payments joined in all", joined(seen), len(expected.payments)),
        ("payments still waiting (order never came)", seen["still_parked"], len(expected.parked)),
        ("messages dead-lettered", len(dead), sum(expected.malformed.values())),
        ("stored values not as last sent", differing(report), 0),
    ]
    say(f"      {'':44} {'pipeline':>9} {'manifest':>9}")
    for label, got, want in rows:
        mark = "" if want is None else ("  ok" if got == want else "  MISMATCH")
        say(f"      {label:44} {got:>9} {'' if want is None else want:>9}{mark}")
    reasons_ok = dict(dead_reasons) == expected.malformed
    say(
        f"      dead-letter reasons: {dict(sorted(dead_reasons.items()))}"
        f"{'  ok' if reasons_ok else '  MISMATCH, manifest: ' + str(expected.malformed)}"
    )
    say(
        f"      duplicates published: {expected.duplicates}; every category of the verifier: "
        f"{'0' if report.ok else report.counts}"
    )
    say(f"      service exit codes: {exit_codes}")
    counts_ok = all(want is None or got == want for _, got, want in rows)
    services_ok = all(code == 0 for code in exit_codes.values())
    ok = report.ok and counts_ok and reasons_ok and services_ok
    say(f"      {'PASSED' if ok else 'FAILED'}: checked against {run.manifest} in {seconds:.1f} s")
    return {
        "ok": ok,
        "seconds": round(seconds, 1),
        "rows": {r[0]: r[1] for r in rows},
        "expected": {r[0]: r[2] for r in rows},
        "dead_letter_reasons": dict(dead_reasons),
        "verifier": report.counts,
        "exit_codes": exit_codes,
        "manifest": str(run.manifest),
    }


def differing(report: Report) -> int:
    """Rows and parked payments whose values are not those of the version sent last (text
    byte for byte, prices digit for digit, dates and instants exactly)."""
    return sum(report.counts[k] for k in ("orders_wrong", "payments_wrong", "parked_wrong"))


def _payment_id(message: Pulled) -> int | None:
    try:
        value = json.loads(message.data).get("payment_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def keep_dead_letters(path: Path, messages: list[Pulled]) -> None:
    """Dead-lettered messages stay where an operator can find them."""
    with path.open("w", encoding="utf-8") as handle:
        for message in messages:
            handle.write(
                json.dumps(
                    {
                        "message_id": message.message_id,
                        "attributes": message.attributes,
                        "data_base64": base64.b64encode(message.data).decode(),
                    }
                )
                + "\n"
            )


def explain_keep(config: InfraConfig) -> None:
    directory = config.base_dir
    say("\nCassandra and the emulator are still running, with the data. To use them:")
    for key, value in env_for(config.cql_port, f"127.0.0.1:{config.pubsub_port}").items():
        say(f"  export {key}='{value}'")
    c = ServiceSettings().cassandra
    say(
        f"  ecom-infra cql --dir {directory} "
        '"SELECT order_id, item, price, order_status, order_created_on, payment_id, '
        f'payment_method, payment_source FROM {c.keyspace}.{c.orders_table} LIMIT 10"'
    )
    say(f'  ecom-infra cql --dir {directory} "SELECT * FROM {c.keyspace}.{c.dlq_table} LIMIT 10"')
    say("  ecom-report --out report/    # the store report: report/report.html and report.json")
    say(f"To stop them: ecom-infra down --dir {directory}")


if __name__ == "__main__":
    sys.exit(main())
