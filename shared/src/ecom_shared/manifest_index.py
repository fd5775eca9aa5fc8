"""The manifest's expected state as an on-disk SQLite index, so checking a table of any size
costs the verifier a bounded amount of memory.

One pass over the manifest folds every record into the index: the newest version of each
order (``updated_at``, else ``creation_date``, decides, as in :func:`expected_state`), every
payment published (duplicates collapse on their key), and counts of what was published. Then
each order gets its winning payment (the newest, :func:`payment_version_micros`'s order), and
a payment whose order never came is expected to stay parked. Lookups are by primary key, so
checking one stored row is one B-tree probe; SQLite's page cache is capped
(:data:`CACHE_KIB`), so memory does not grow with the manifest, only the file does (about
200 bytes a record).

Values are kept in the form they take in Cassandra: times as milliseconds since the epoch,
money as the decimal text the producer wrote, enums as their values.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from ecom_shared.manifest import ExpectedState, read_records

CACHE_KIB: Final = 32 * 1024  # SQLite's page cache: the index's whole memory
_BATCH: Final = 10_000

OrderFields = tuple[int, str, int, Decimal, str, str, int]
"""customer_id, item, quantity, price, shipping_address, order_status, created (ms)."""
PaymentFields = tuple[int, str, str | None, str, int]
"""payment_id, payment_method, card_last_four, payment_status, paid (ms)."""
ORDER_FIELD_NAMES: Final = (
    "customer_id", "item", "quantity", "price", "shipping_address", "order_status", "created_at",
)  # fmt: skip
PAYMENT_FIELD_NAMES: Final = (
    "payment_id", "payment_method", "card_last_four", "payment_status", "paid_at",
)  # fmt: skip

_SCHEMA = (
    "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, version INTEGER NOT NULL,"
    " customer_id INTEGER, item TEXT, quantity INTEGER, price TEXT, address TEXT, status TEXT,"
    " created_ms INTEGER, payment_id INTEGER)",
    "CREATE TABLE payments (order_id INTEGER, payment_id INTEGER, version INTEGER NOT NULL,"
    " method TEXT, last4 TEXT, status TEXT, paid_ms INTEGER,"
    " PRIMARY KEY (order_id, payment_id)) WITHOUT ROWID",
    "CREATE TABLE seen_rows (order_id INTEGER PRIMARY KEY)",
    "CREATE TABLE seen_parked (order_id INTEGER, payment_id INTEGER,"
    " PRIMARY KEY (order_id, payment_id)) WITHOUT ROWID",
)
_UPSERT_ORDER = (
    "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (order_id) DO UPDATE"
    " SET version = excluded.version, customer_id = excluded.customer_id, item = excluded.item,"
    " quantity = excluded.quantity, price = excluded.price, address = excluded.address,"
    " status = excluded.status, created_ms = excluded.created_ms"
    " WHERE excluded.version > orders.version"
)
_INSERT_PAYMENT = "INSERT OR IGNORE INTO payments VALUES (?, ?, ?, ?, ?, ?, ?)"
_FINISH = (
    "UPDATE orders SET payment_id = (SELECT p.payment_id FROM payments p"
    " WHERE p.order_id = orders.order_id ORDER BY p.version DESC, p.payment_id DESC LIMIT 1)",
    "CREATE INDEX payments_by_id ON payments (payment_id)",
)
_PARKED = "FROM payments p WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = p.order_id)"


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(text: str) -> int:
    """:func:`~ecom_shared.events.to_micros` of an ISO 8601 time (naive means UTC)."""
    moment = datetime.fromisoformat(text)
    delta = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _order_row(event: dict[str, Any]) -> tuple[Any, ...]:
    created = _micros(event["creation_date"])
    updated = event.get("updated_at")
    version = _micros(updated) if updated else created  # as expected_state's _version
    return (
        event["order_id"], version, event["customer_id"], event["item"], event["quantity"],
        str(event["price"]), event["shipping_address"], event["order_status"], created // 1000,
    )  # fmt: skip


def _payment_row(event: dict[str, Any]) -> tuple[Any, ...]:
    paid = _micros(event["payment_datetime"]) // 1000
    version = paid * 1000 + event["payment_id"] % 1000  # payment_version_micros
    return (
        event["order_id"], event["payment_id"], version, event["payment_method"],
        event.get("card_last_four"), event["payment_status"], paid,
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
        for record in read_records(lines):
            index._count(record)
            kind = record["kind"]
            if kind == "order":
                orders.append(_order_row(record["event"]))
            elif kind == "payment":
                payments.append(_payment_row(record["event"]))
            if len(orders) + len(payments) >= _BATCH:
                index._write(orders, payments)
        index._write(orders, payments)
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
        dump = [o.model_dump(mode="json") for o in state.orders.values()]
        paid = [*state.payments.values(), *state.parked.values(), *state.superseded]
        index._write(
            [_order_row(e) for e in dump],
            [_payment_row(p.model_dump(mode="json")) for p in paid],
        )
        index.totals = Totals(state.published, state.duplicates, sum(state.malformed.values()))
        index._finish()
        return index

    def close(self) -> None:
        self._db.close()

    def _count(self, record: dict[str, Any]) -> None:
        self.totals.published += 1
        self.totals.duplicates += bool(record.get("duplicate"))
        self.totals.malformed += record["kind"] == "malformed"

    def _write(self, orders: list[tuple[Any, ...]], payments: list[tuple[Any, ...]]) -> None:
        with self._db:
            self._db.executemany(_UPSERT_ORDER, orders)
            self._db.executemany(_INSERT_PAYMENT, payments)
        orders.clear()
        payments.clear()

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
            " o.created_ms, p.payment_id, p.method, p.last4, p.status, p.paid_ms FROM orders o"
            " LEFT JOIN payments p ON p.order_id = o.order_id AND p.payment_id = o.payment_id"
            " WHERE o.order_id = ?",
            (order_id,),
        ).fetchone()
        if row is None:
            return None
        order = (row[0], row[1], row[2], Decimal(row[3]), row[4], row[5], row[6])
        payment = None if row[7] is None else (row[7], row[8], row[9], row[10], row[11])
        return Expected(order, payment)

    def payment_orders(self, payment_id: int) -> list[int]:
        """The order ids the manifest published this payment for (normally one)."""
        rows = self._db.execute("SELECT order_id FROM payments WHERE payment_id = ?", (payment_id,))
        return [order_id for (order_id,) in rows]

    def has_order(self, order_id: int) -> bool:
        return self._one("SELECT count(*) FROM orders WHERE order_id = ?", order_id) > 0

    def is_parked(self, order_id: int, payment_id: int) -> bool:
        """True for a payment the manifest expects parked: published, its order never was."""
        if self.has_order(order_id):
            return False
        sql = "SELECT count(*) FROM payments WHERE order_id = ? AND payment_id = ?"
        return self._one(sql, order_id, payment_id) > 0

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
