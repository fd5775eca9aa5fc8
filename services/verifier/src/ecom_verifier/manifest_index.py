"""The manifest's expected state as an on-disk SQLite index, so checking a table of any size
costs the verifier a bounded amount of memory.

One pass over the manifest folds every record into the index with :mod:`ecom_verifier.manifest`'s
rules: per order the version published last (the later line; ``updated_at`` decides when two
lines both carry one), every payment published (duplicates collapse on their key), and counts of
what was published. Then each order gets its winning payment (the latest ``payment_datetime``,
ties broken by the payment id), and a payment whose order never came is expected to stay
parked. Lookups are by primary key, so checking one stored row is one B-tree probe; SQLite's
page cache is capped (:data:`CACHE_KIB`), so memory does not grow with the manifest, only the
file does.

Malformed records that name their message (``message_id``) are kept by topic and id with the
reason the pipeline must give, for the dead-letter check.

Values are kept in the form they take in Cassandra: text as sent, the price as the exact
decimal's text (its digits and exponent: ``929.50`` is not ``929.5``), times as milliseconds
since the epoch, the creation day as an ISO date.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from ecom_verifier.manifest import (
    ExpectedState,
    creation,
    exact_decimal,
    micros,
    payment_version,
    read_records,
)

CACHE_KIB: Final = 32 * 1024  # SQLite's page cache: the index's whole memory
_BATCH: Final = 10_000

OrderFields = tuple[int, str, int, str, str, str, int, date]
"""customer_id, item, quantity, price (exact decimal text), shipping_address, order_status,
order_created_at (ms), order_created_on."""
PaymentFields = tuple[int, str, str | None, str, int]
"""payment_id, payment_method, card_last_four, payment_status, paid_at (ms)."""
ORDER_FIELD_NAMES: Final = (
    "customer_id", "item", "quantity", "price", "shipping_address", "order_status",
    "order_created_at", "order_created_on",
)  # fmt: skip
PAYMENT_FIELD_NAMES: Final = (
    "payment_id", "payment_method", "card_last_four", "payment_status", "paid_at",
)  # fmt: skip

_SCHEMA = (
    "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, updated_us INTEGER,"
    " customer_id INTEGER, item TEXT, quantity INTEGER, price TEXT, address TEXT, status TEXT,"
    " created_ms INTEGER, created_on TEXT, payment_id INTEGER)",
    "CREATE TABLE payments (order_id INTEGER, payment_id INTEGER, version INTEGER NOT NULL,"
    " method TEXT, last4 TEXT, status TEXT, paid_ms INTEGER,"
    " PRIMARY KEY (order_id, payment_id)) WITHOUT ROWID",
    "CREATE TABLE malformed (topic TEXT, message_id TEXT, reason TEXT,"
    " PRIMARY KEY (topic, message_id)) WITHOUT ROWID",
    "CREATE TABLE seen_rows (order_id INTEGER PRIMARY KEY)",
    "CREATE TABLE seen_parked (order_id INTEGER, payment_id INTEGER,"
    " PRIMARY KEY (order_id, payment_id)) WITHOUT ROWID",
)
# Rows are written in manifest order, so a later line replaces an earlier one (the version
# published last), unless both carry updated_at and the earlier one's is later.
_UPSERT_ORDER = (
    "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (order_id)"
    " DO UPDATE SET updated_us = excluded.updated_us, customer_id = excluded.customer_id,"
    " item = excluded.item, quantity = excluded.quantity, price = excluded.price,"
    " address = excluded.address, status = excluded.status, created_ms = excluded.created_ms,"
    " created_on = excluded.created_on WHERE excluded.updated_us IS NULL"
    " OR orders.updated_us IS NULL OR excluded.updated_us >= orders.updated_us"
)
_UPSERT_PAYMENT = (
    "INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id, payment_id)"
    " DO UPDATE SET version = excluded.version, method = excluded.method,"
    " last4 = excluded.last4, status = excluded.status, paid_ms = excluded.paid_ms"
    " WHERE excluded.version >= payments.version"
)
_FINISH = (
    "UPDATE orders SET payment_id = (SELECT p.payment_id FROM payments p"
    " WHERE p.order_id = orders.order_id ORDER BY p.version DESC, p.payment_id DESC LIMIT 1)",
    "CREATE INDEX payments_by_id ON payments (payment_id)",
)
_PARKED = "FROM payments p WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = p.order_id)"


def _order_row(event: dict[str, Any]) -> tuple[Any, ...]:
    created_ms, created_on = creation(event["creation_date"])
    updated = event.get("updated_at")
    return (
        event["order_id"], None if updated is None else micros(updated), event["customer_id"],
        event["item"], event["quantity"], str(exact_decimal(event["price"])),
        event["shipping_address"], event["order_status"], created_ms, created_on.isoformat(),
    )  # fmt: skip


def _payment_row(event: dict[str, Any]) -> tuple[Any, ...]:
    version, _ = payment_version(event)
    paid_ms = micros(event["payment_datetime"]) // 1000
    return (
        event["order_id"], event["payment_id"], version, event["payment_method"],
        event.get("card_last_four"), event["payment_status"], paid_ms,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Expected:
    """What one row of the orders table must hold."""

    order: OrderFields
    payment: PaymentFields | None


@dataclass(slots=True)
class Totals:
    published: int = 0
    duplicates: int = 0
    malformed: int = 0
    malformed_unnamed: int = 0  # malformed records that carry no message id


class ManifestIndex:
    """The expected state, queried by key. Use :meth:`build` or :meth:`from_state`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.totals = Totals()
        self.orders = self.joined = self.parked = 0
        self.scope: list[tuple[int, int]] = []  # order id ranges this manifest speaks for

    @classmethod
    def build(cls, lines: Iterable[str], path: Path | None = None) -> ManifestIndex:
        """Fold manifest lines into a new index at ``path`` (in memory when None)."""
        index = cls(_connect(path))
        orders: list[tuple[Any, ...]] = []
        payments: list[tuple[Any, ...]] = []
        malformed: list[tuple[str, str, str]] = []
        for record in read_records(lines):
            index._count(record)
            kind = record["kind"]
            if kind == "order":
                orders.append(_order_row(record["event"]))
            elif kind == "payment":
                payments.append(_payment_row(record["event"]))
            elif kind == "malformed" and "message_id" in record:
                malformed.append((record["topic"], record["message_id"], record["reason"]))
            if len(orders) + len(payments) >= _BATCH:
                index._write(orders, payments)
        index._write(orders, payments)
        index._write_malformed(malformed)
        index._finish()
        return index

    @classmethod
    def load(cls, manifest: Path, path: Path | None = None) -> ManifestIndex:
        with manifest.open(encoding="utf-8") as handle:
            return cls.build(handle, path)

    @classmethod
    def from_state(cls, state: ExpectedState) -> ManifestIndex:
        """An in-memory index of an already folded state (small manifests)."""
        index = cls(_connect(None))
        paid = [*state.payments.values(), *state.parked.values(), *state.superseded]
        index._write(
            [_order_row(o.event) for o in state.orders.values()],
            [_payment_row(p.event) for p in paid],
        )
        malformed = sum(state.malformed.values())
        unnamed = malformed - len(state.malformed_ids)
        index.totals = Totals(state.published, state.duplicates, malformed, unnamed)
        index._write_malformed([(*key, reason) for key, reason in state.malformed_ids.items()])
        index._finish()
        return index

    def close(self) -> None:
        self._db.close()

    def _count(self, record: dict[str, Any]) -> None:
        self.totals.published += 1
        self.totals.duplicates += bool(record.get("duplicate"))
        malformed = record["kind"] == "malformed"
        self.totals.malformed += malformed
        self.totals.malformed_unnamed += malformed and "message_id" not in record

    def _write(self, orders: list[tuple[Any, ...]], payments: list[tuple[Any, ...]]) -> None:
        with self._db:
            self._db.executemany(_UPSERT_ORDER, orders)
            self._db.executemany(_UPSERT_PAYMENT, payments)
        orders.clear()
        payments.clear()

    def _write_malformed(self, rows: list[tuple[str, str, str]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO malformed VALUES (?, ?, ?)", rows)

    def _finish(self) -> None:
        with self._db:
            for statement in _FINISH:
                self._db.execute(statement)
        one = self._one
        self.orders = one("SELECT count(*) FROM orders")
        self.joined = one("SELECT count(*) FROM orders WHERE payment_id IS NOT NULL")
        self.parked = one(f"SELECT count(*) {_PARKED}")
        ranges = [
            self._db.execute("SELECT min(order_id), max(order_id) FROM orders").fetchone(),
            self._db.execute(f"SELECT min(p.order_id), max(p.order_id) {_PARKED}").fetchone(),
        ]
        self.scope = [(low, high) for low, high in ranges if low is not None]

    def _one(self, sql: str, *args: Any) -> int:
        row = self._db.execute(sql, args).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def in_scope(self, order_id: int) -> bool:
        return any(low <= order_id <= high for low, high in self.scope)

    def expected(self, order_id: int) -> Expected | None:
        row = self._db.execute(
            "SELECT o.customer_id, o.item, o.quantity, o.price, o.address, o.status,"
            " o.created_ms, o.created_on, p.payment_id, p.method, p.last4, p.status, p.paid_ms"
            " FROM orders o LEFT JOIN payments p"
            " ON p.order_id = o.order_id AND p.payment_id = o.payment_id WHERE o.order_id = ?",
            (order_id,),
        ).fetchone()
        if row is None:
            return None
        order = (*row[:7], date.fromisoformat(row[7]))
        payment = None if row[8] is None else tuple(row[8:])
        return Expected(order, payment)

    def payment_orders(self, payment_id: int) -> list[int]:
        """The order ids the manifest published this payment for (normally one)."""
        rows = self._db.execute("SELECT order_id FROM payments WHERE payment_id = ?", (payment_id,))
        return [order_id for (order_id,) in rows]

    def has_order(self, order_id: int) -> bool:
        return self._one("SELECT count(*) FROM orders WHERE order_id = ?", order_id) > 0

    def parked_payment(self, order_id: int, payment_id: int) -> PaymentFields | None:
        """The fields of a payment the manifest expects parked (published, its order never
        was); None when it expects no such parked payment."""
        if self.has_order(order_id):
            return None
        row = self._db.execute(
            "SELECT payment_id, method, last4, status, paid_ms FROM payments"
            " WHERE order_id = ? AND payment_id = ?",
            (order_id, payment_id),
        ).fetchone()
        return None if row is None else tuple(row)

    def malformed_reason(self, topic: str, message_id: str) -> str | None:
        """The reason the pipeline must dead-letter this message with; None when the manifest
        lists no such malformed message."""
        row = self._db.execute(
            "SELECT reason FROM malformed WHERE topic = ? AND message_id = ?", (topic, message_id)
        ).fetchone()
        return None if row is None else str(row[0])

    def malformed_messages(self) -> Iterator[tuple[str, str, str]]:
        """Every malformed message the manifest names: topic, message id, reason."""
        rows = self._db.execute("SELECT topic, message_id, reason FROM malformed ORDER BY 1, 2")
        yield from ((str(t), str(m), str(r)) for t, m, r in rows)

    def start_pass(self) -> None:
        """Forget what an earlier check saw."""
        with self._db:
            self._db.execute("DELETE FROM seen_rows")
            self._db.execute("DELETE FROM seen_parked")

    def saw_rows(self, order_ids: list[int]) -> None:
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO seen_rows VALUES (?)", _singles(order_ids))

    def saw_parked(self, keys: list[tuple[int, int]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO seen_parked VALUES (?, ?)", keys)

    def unseen_orders(self, *, paid_only: bool = False) -> Iterator[int]:
        """Expected orders (or, with ``paid_only``, orders expecting a payment) whose row the
        check did not see, by id."""
        paid = "AND o.payment_id IS NOT NULL" if paid_only else ""
        yield from (
            order_id
            for (order_id,) in self._db.execute(
                "SELECT o.order_id FROM orders o WHERE NOT EXISTS (SELECT 1 FROM seen_rows s"  # noqa: S608 - constant text
                f" WHERE s.order_id = o.order_id) {paid} ORDER BY o.order_id"
            )
        )

    def unseen_parked(self) -> Iterator[tuple[int, int]]:
        """Payments expected parked that the check did not find in the DLQ table."""
        cursor = self._db.execute(
            f"SELECT p.order_id, p.payment_id {_PARKED} AND NOT EXISTS (SELECT 1 FROM"  # noqa: S608 - constant text
            " seen_parked s WHERE s.order_id = p.order_id AND s.payment_id = p.payment_id)"
            " ORDER BY p.order_id, p.payment_id"
        )
        yield from ((int(a), int(b)) for a, b in cursor)


def _singles(values: list[int]) -> Iterator[tuple[int]]:
    return ((value,) for value in values)


def _connect(path: Path | None) -> sqlite3.Connection:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    db = sqlite3.connect(":memory:" if path is None else str(path))
    for pragma in (
        "journal_mode = OFF",  # a scratch file: rebuilt from the manifest on every run
        "synchronous = OFF",
        "temp_store = FILE",
        f"cache_size = -{CACHE_KIB}",
    ):
        db.execute(f"PRAGMA {pragma}")
    for statement in _SCHEMA:
        db.execute(statement)
    return db
