"""The ceilings: the least an order or payment consumer can do, with no product code.

Run as ``python -m ecom_devtools.bench.ceilings orders|payments ...``, one process like the
product's consumers. Each of ``--pullers`` loops pulls up to 1,000 messages with gcloud-aio's
``SubscriberClient.pull``, writes them all concurrently with prepared acsylla statements
(orders: one insert each; payments: a prepared read of the order, then an update), and acks
the batch in one request. No validation beyond ``json.loads`` (prices read as exact decimals,
as the product must), no logging, no leases, no error policy: what the same libraries can do on
this machine, the yardstick for the product. Bodies are the apps' (a date-only
``creation_date``, no ``updated_at``): an order version is written with its publish time, as
the product writes it.
It runs until SIGTERM (the benchmark stops it once every row is there), so that its CPU
time can be read from /proc up to the last row, like a product consumer's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import acsylla
import aiohttp
import uvloop
from gcloud.aio.pubsub import SubscriberClient

_MAX_MESSAGES = 1000


def _decimal_blob(value: Decimal | int) -> bytes:
    """CQL ``decimal`` wire form of a JSON number (acsylla cannot bind decimals)."""
    sign, digits, exponent = Decimal(value).as_tuple()
    assert isinstance(exponent, int)  # a JSON number is finite
    unscaled = int("".join(map(str, digits))) * (-1 if sign else 1)
    size = (unscaled.bit_length() + 8) // 8
    return (-exponent).to_bytes(4, "big", signed=True) + unscaled.to_bytes(size, "big", signed=True)


class OrderWriter:
    def __init__(self, session: Any, insert: Any) -> None:
        self._session = session
        self._insert = insert

    @classmethod
    async def prepare(cls, session: Any, table: str) -> OrderWriter:
        insert = await session.create_prepared(
            f"INSERT INTO {table} (order_id, customer_id, item, quantity, price, "
            "shipping_address, order_status, order_created_at, order_created_on, "
            "order_version_at, order_ingested_at) "
            "VALUES (?, ?, ?, ?, blobAsDecimal(?), ?, ?, ?, ?, ?, ?)"
        )
        return cls(session, insert)

    async def write(self, data: bytes, published: datetime) -> None:
        o = json.loads(data, parse_float=Decimal)
        day = date.fromisoformat(o["creation_date"])
        created = datetime(day.year, day.month, day.day, tzinfo=UTC)
        values = [
            o["order_id"], o["customer_id"], o["item"], o["quantity"], _decimal_blob(o["price"]),
            o["shipping_address"], o["order_status"], created, day, published, datetime.now(UTC),
        ]  # fmt: skip
        await self._session.execute(self._insert.bind(values))


class PaymentWriter:
    def __init__(self, session: Any, read: Any, update: Any) -> None:
        self._session = session
        self._read = read
        self._update = update

    @classmethod
    async def prepare(cls, session: Any, table: str) -> PaymentWriter:
        read = await session.create_prepared(
            f"SELECT order_version_at FROM {table} WHERE order_id = ?"
        )
        update = await session.create_prepared(
            f"UPDATE {table} SET payment_id = ?, payment_method = ?, card_last_four = ?, "
            "payment_status = ?, paid_at = ?, payment_ingested_at = ?, payment_source = ? "
            "WHERE order_id = ?"
        )
        return cls(session, read, update)

    async def write(self, data: bytes, published: datetime) -> None:  # noqa: ARG002 - as orders
        p = json.loads(data)
        found = (await self._session.execute(self._read.bind([p["order_id"]]))).first()
        if found is None:
            return  # the ceiling's scenario has every order; nothing to park
        values = [
            p["payment_id"], p["payment_method"], p["card_last_four"], p["payment_status"],
            datetime.fromisoformat(p["payment_datetime"]), datetime.now(UTC), "stream",
            p["order_id"],
        ]  # fmt: skip
        await self._session.execute(self._update.bind(values))


@dataclass
class Stats:
    """Printed at exit, so the ceiling's log shows where its time went."""

    pulls: int = 0
    messages: int = 0
    failed_writes: int = 0
    pull_seconds: float = 0.0
    write_seconds: float = 0.0
    ack_seconds: float = 0.0
    first_error: str = ""
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)


async def _pull_loop(
    client: SubscriberClient, path: str, writer: OrderWriter | PaymentWriter, stats: Stats
) -> None:
    """Pull a batch, write it all at once, ack what was written in one request; repeat."""
    clock = time.monotonic
    while True:
        began = clock()
        batch = await client.pull(path, _MAX_MESSAGES, timeout=120)
        wrote = clock()
        outcomes = await asyncio.gather(
            # gcloud-aio parses publishTime as a naive datetime; it is UTC.
            *(writer.write(m.data or b"", m.publish_time.replace(tzinfo=UTC)) for m in batch),
            return_exceptions=True,
        )
        acking = clock()
        done = [m.ack_id for m, o in zip(batch, outcomes, strict=True) if o is None]
        if done:
            await client.acknowledge(path, done)
        errors = [o for o in outcomes if o is not None]
        if errors and not stats.first_error:
            stats.first_error = repr(errors[0])[:300]
        stats.pulls += 1
        stats.messages += len(done)
        stats.failed_writes += len(errors)
        stats.pull_seconds += wrote - began
        stats.write_seconds += acking - wrote
        stats.ack_seconds += clock() - acking


async def consume(args: argparse.Namespace) -> int:
    cluster = acsylla.create_cluster(
        ["127.0.0.1"],
        port=args.cql_port,
        consistency=acsylla.Consistency.LOCAL_QUORUM,
        num_threads_io=1,
        log_level="error",
    )
    session = await cluster.create_session()
    kind = OrderWriter if args.kind == "orders" else PaymentWriter
    writer = await kind.prepare(session, args.table)
    path = SubscriberClient.subscription_path(args.project, args.subscription)
    stats = Stats()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stats.finished.set)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        client = SubscriberClient(session=http)
        loops = [
            asyncio.create_task(_pull_loop(client, path, writer, stats))
            for _ in range(args.pullers)
        ]
        finished = asyncio.create_task(stats.finished.wait())
        await asyncio.wait([finished, *loops], return_when=asyncio.FIRST_COMPLETED)
        finished.cancel()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
    await session.close()
    cluster.destroy()
    report = {f.name: getattr(stats, f.name) for f in fields(stats) if f.name != "finished"}
    print(json.dumps({"ceiling.done": report}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecom_devtools.bench.ceilings")
    parser.add_argument("kind", choices=["orders", "payments"])
    parser.add_argument("--project", required=True)
    parser.add_argument("--subscription", required=True)
    parser.add_argument("--table", required=True, help="keyspace.table")
    parser.add_argument("--cql-port", type=int, required=True)
    parser.add_argument("--pullers", type=int, default=4)
    return uvloop.run(consume(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
