"""The two tables as the services use them: ports (Protocols) and their Cassandra implementation.

Writers own disjoint columns: the order path writes only order columns, the payment path only
payment columns, so neither ever erases the other's data (no NULL is bound for a column a
writer does not own). Order and payment columns are written with the version's timestamp
(:mod:`ecom_shared.versions`), so redeliveries change nothing and the newest version wins
whatever the delivery order. A parked payment is inserted with its version's timestamp too, and
a join deletes it with that same timestamp: only the version it stored, never a newer one
parked meanwhile (a delete shadows exactly the writes with a timestamp up to its own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from ecom_shared.cassandra.cqltypes import decimal_to_blob
from ecom_shared.cassandra.session import Prepared, Session, bind, execute, scan_by_token
from ecom_shared.clock import as_utc, from_millis, to_millis
from ecom_shared.error_text import describe_error
from ecom_shared.events import Order, Payment
from ecom_shared.settings import CassandraSettings
from ecom_shared.versions import payment_version_micros

PaymentSource = Literal["stream", "order", "dlq"]
"""How a payment reached its row: joined by the payment consumer (``stream``), taken from the
DLQ table by the order consumer when its order arrived (``order``), or by the DLQ worker's
pass (``dlq``)."""


@dataclass(frozen=True, slots=True)
class ParkedPayment:
    order_id: int
    payment_id: int
    payment: Payment | None  # None for a stub (payment fields gone, attempts left)
    parked_at: datetime | None
    attempts: int
    published_at: datetime | None = None  # None in a row parked without it

    @property
    def version(self) -> int | None:
        """The write timestamp it was parked with, which its join writes and deletes with;
        None for a stub. A row without ``published_at`` counts as published at its payment
        time, so any version parked since outranks it."""
        if self.payment is None:
            return None
        published = self.published_at or self.payment.payment_datetime
        return payment_version_micros(self.payment, published)


@dataclass(frozen=True, slots=True)
class UnreadableRow:
    """A DLQ row that cannot be used: a payment field missing, or a value the driver cannot
    decode (a time outside years 1 to 9999). Reported and left in place, never joined."""

    order_id: int
    payment_id: int
    problem: str


class OrdersTable(Protocol):
    async def upsert_order(self, order: Order, version_micros: int, now: datetime) -> None: ...

    async def order_exists(self, order_id: int) -> bool: ...

    async def set_payment(
        self, payment: Payment, version_micros: int, source: PaymentSource, now: datetime
    ) -> None: ...


class DlqTable(Protocol):
    async def park(self, payment: Payment, published_at: datetime, now: datetime) -> None: ...

    def scan(
        self, page_size: int, segments: int
    ) -> AsyncIterator[ParkedPayment | UnreadableRow]: ...

    async def parked_for_many(self, order_ids: list[int]) -> dict[int, list[ParkedPayment]]: ...

    async def record_attempt(self, parked: ParkedPayment, now: datetime) -> None: ...

    async def remove(self, order_id: int, payment_id: int, version: int | None) -> None: ...


class CassandraOrders:
    """``order_payments``: one row per order, order and payment details side by side."""

    def __init__(self, session: Session, upsert: Prepared, exists: Prepared, pay: Prepared) -> None:
        self._session = session
        self._upsert = upsert
        self._exists = exists
        self._pay = pay

    @classmethod
    async def prepare(cls, session: Session, settings: CassandraSettings) -> CassandraOrders:
        table = f"{settings.keyspace}.{settings.orders_table}"
        upsert = await session.create_prepared(
            f"UPDATE {table} SET customer_id = ?, item = ?, quantity = ?, "
            "price = blobAsDecimal(?), "  # acsylla cannot bind decimals: see cassandra.cqltypes
            "shipping_address = ?, order_status = ?, order_created_at = ?, order_created_on = ?, "
            "order_version_at = ?, order_ingested_at = ? WHERE order_id = ?"
        )
        # The order columns' write time, a plain bigint: null unless an order version is stored
        # (reading the timestamp itself would build a datetime per payment only to test it).
        exists = await session.create_prepared(
            f"SELECT writetime(order_version_at) AS order_written FROM {table} WHERE order_id = ?"
        )
        pay = await session.create_prepared(
            f"UPDATE {table} SET payment_id = ?, payment_method = ?, card_last_four = ?, "
            "payment_status = ?, paid_at = ?, payment_ingested_at = ?, payment_source = ? "
            "WHERE order_id = ?"
        )
        return cls(session, upsert, exists, pay)

    async def upsert_order(self, order: Order, version_micros: int, now: datetime) -> None:
        version_at = from_millis(version_micros // 1000)
        values = [
            order.customer_id,
            order.item,
            order.quantity,
            decimal_to_blob(order.price),
            order.shipping_address,
            order.order_status,
            order.created_at,
            order.created_on,
            version_at,
            now,
            order.order_id,
        ]
        await execute(self._session, bind(self._upsert, values, timestamp=version_micros))

    async def order_exists(self, order_id: int) -> bool:
        row = (await execute(self._session, bind(self._exists, [order_id]))).first()
        return row is not None and row.column_value("order_written") is not None

    async def set_payment(
        self, payment: Payment, version_micros: int, source: PaymentSource, now: datetime
    ) -> None:
        values = [*_payment_fields(payment), now, source, payment.order_id]
        await execute(self._session, bind(self._pay, values, timestamp=version_micros))


class _Statements:
    """Statements prepared once on a session, by name."""

    def __init__(self, session: Session, statements: dict[str, Prepared]) -> None:
        self._session = session
        self._st = statements

    @staticmethod
    async def _prepare_all(session: Session, texts: dict[str, str]) -> dict[str, Prepared]:
        return {name: await session.create_prepared(cql) for name, cql in texts.items()}


class CassandraDlq(_Statements):
    """``payments_dlq``: valid payments waiting for their order, keyed (order_id, payment_id)."""

    @classmethod
    async def prepare(cls, session: Session, settings: CassandraSettings) -> CassandraDlq:
        table = f"{settings.keyspace}.{settings.dlq_table}"
        cols = (
            "order_id, payment_id, payment_method, card_last_four, payment_status, paid_at, "
            "parked_at, published_at"
        )
        texts = {
            "park": f"INSERT INTO {table} ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            "scan": f"SELECT {cols}, attempts FROM {table} "
            "WHERE token(order_id) >= ? AND token(order_id) <= ?",
            "of_orders": f"SELECT {cols}, attempts FROM {table} WHERE order_id IN ?",
            "attempt": f"UPDATE {table} SET attempts = ?, last_attempt_at = ? "
            "WHERE order_id = ? AND payment_id = ?",
            "remove": f"DELETE FROM {table} WHERE order_id = ? AND payment_id = ?",
        }
        return cls(session, await cls._prepare_all(session, texts))

    async def park(self, payment: Payment, published_at: datetime, now: datetime) -> None:
        """Insert with the version's timestamp: an older version parked later loses to it."""
        published = from_millis(to_millis(published_at))  # what the column keeps, exactly
        values = [payment.order_id, *_payment_fields(payment), now, published]
        version = payment_version_micros(payment, published)
        await execute(self._session, bind(self._st["park"], values, timestamp=version))

    async def scan(
        self, page_size: int, segments: int
    ) -> AsyncIterator[ParkedPayment | UnreadableRow]:
        """Every parked payment, read by token range, one page at a time. A row that cannot
        be used comes as an :class:`UnreadableRow`, so the scan goes on past it."""
        rows = scan_by_token(
            self._session, self._st["scan"], page_size=page_size, segments=segments
        )
        async for row in rows:
            yield _read_parked(row)

    async def parked_for_many(self, order_ids: list[int]) -> dict[int, list[ParkedPayment]]:
        """The payments parked for these orders, by order id, in one ``IN`` read. A row that
        cannot be used is left out (the worker's pass reports it), so it never fails the
        order it belongs to."""
        found: dict[int, list[ParkedPayment]] = {}
        page_state: bytes | None = None
        while True:
            statement = bind(self._st["of_orders"], [order_ids])
            statement.set_page_size(1000)
            if page_state is not None:
                statement.set_page_state(page_state)
            result = await execute(self._session, statement)
            for row in result:
                parked = _read_parked(row)
                if isinstance(parked, ParkedPayment):
                    found.setdefault(parked.order_id, []).append(parked)
            if not result.has_more_pages():
                return found
            page_state = result.page_state()

    async def record_attempt(self, parked: ParkedPayment, now: datetime) -> None:
        # Plain write, no LWT (mixing Paxos and plain writes on one partition is unsafe), with
        # the timestamp of the version read: if a join deleted that version meanwhile, its
        # delete (same timestamp, and a delete wins a tie) shadows this write, so no stub is
        # left. (Written with any other timestamp, it would leave a stub, attempts without payment
        # fields: ``scan`` reports such a row with no payment, and the worker removes it.)
        values = [parked.attempts + 1, now, parked.order_id, parked.payment_id]
        statement = bind(self._st["attempt"], values, timestamp=parked.version)
        await execute(self._session, statement)

    async def remove(self, order_id: int, payment_id: int, version: int | None) -> None:
        """Delete the version written with timestamp ``version`` and anything older, never a
        newer version parked since; ``None`` (a stub) deletes with the client's clock, which
        no payment version reaches (:func:`~ecom_shared.versions.payment_version_micros`)."""
        statement = bind(self._st["remove"], [order_id, payment_id], timestamp=version)
        await execute(self._session, statement)


class StoreProbe(_Statements):
    """Raises unless Cassandra can take the pipeline's writes and reads now, at the configured
    consistency: the consumers' dependency gate and the DLQ worker call it.

    A read alone is not enough: a node may answer reads while it refuses every write (the
    role's MODIFY permission revoked, a disk full, a table dropped), and a gate reopened by a
    read would pull again and burn delivery attempts until healthy messages reach the
    dead-letter topic. Nor is a query of ``system.local``: with two of three replicas down,
    any live node still answers it while every ``LOCAL_QUORUM`` write fails.

    So the probe writes to both tables, then reads one partition of the orders table as the
    services read it. The writes are deletes of a reserved key, ``order_id`` 0, that no order
    or payment has (ids start at 1), with the fixed write timestamp 1 µs: a delete hides only
    data written before it, and every write of the pipeline carries its event time, so the
    probe removes nothing, adds no row that a reader or the DLQ scan could see, and writes the
    same thing every time (one tombstone per table, kept small by compaction). They need the
    same MODIFY permission, replicas and disk as the pipeline's own writes.
    """

    ORDER_ID = 0  # no order has this id (ids start at 1)
    PAYMENT_ID = 0  # nor any payment
    WRITTEN_AT = 1  # µs since the epoch: older than any write of the pipeline

    @classmethod
    async def prepare(cls, session: Session, settings: CassandraSettings) -> StoreProbe:
        orders = f"{settings.keyspace}.{settings.orders_table}"
        dlq = f"{settings.keyspace}.{settings.dlq_table}"
        at = f"USING TIMESTAMP {cls.WRITTEN_AT}"
        texts = {
            "orders": f"DELETE FROM {orders} {at} WHERE order_id = ?",
            "dlq": f"DELETE FROM {dlq} {at} WHERE order_id = ? AND payment_id = ?",
            "read": f"SELECT order_id FROM {orders} WHERE order_id = ?",
        }
        return cls(session, await cls._prepare_all(session, texts))

    async def __call__(self) -> None:
        await execute(self._session, bind(self._st["orders"], [self.ORDER_ID]))
        await execute(self._session, bind(self._st["dlq"], [self.ORDER_ID, self.PAYMENT_ID]))
        await execute(self._session, bind(self._st["read"], [self.ORDER_ID]))


def _payment_fields(payment: Payment) -> list[Any]:
    """payment_id, payment_method, card_last_four, payment_status, paid_at: in this order."""
    return [
        payment.payment_id,
        payment.payment_method,
        payment.card_last_four,
        payment.payment_status,
        payment.payment_datetime,
    ]


_REQUIRED: tuple[str, ...] = ("payment_method", "payment_status", "paid_at")
"""The payment fields a parked payment cannot do without (``card_last_four`` is optional)."""


def _read_parked(row: Any) -> ParkedPayment | UnreadableRow:
    """The row as a parked payment, or as unreadable: decoding one row never fails a read."""
    try:
        return _parked(row)
    except Exception as exc:  # noqa: BLE001 - whatever one row holds, the read goes on
        order_id, payment_id = row.column_value("order_id"), row.column_value("payment_id")
        return UnreadableRow(order_id, payment_id, describe_error(exc))


def _parked(row: Any) -> ParkedPayment:
    order_id, payment_id = row.column_value("order_id"), row.column_value("payment_id")
    attempts = row.column_value("attempts") or 0
    required = {name: row.column_value(name) for name in _REQUIRED}
    if all(value is None for value in required.values()):
        return ParkedPayment(order_id, payment_id, None, None, attempts)
    if missing := [name for name, value in required.items() if value is None]:
        raise ValueError(f"payment fields missing: {', '.join(missing)}")
    # Validated when it was parked; rebuilt without validating again.
    payment = Payment.model_construct(
        payment_id=payment_id,
        order_id=order_id,
        payment_method=required["payment_method"],
        card_last_four=row.column_value("card_last_four"),
        payment_status=required["payment_status"],
        payment_datetime=as_utc(required["paid_at"]),
    )
    parked_at = as_utc(row.column_value("parked_at"))
    published_at = as_utc(row.column_value("published_at"))
    return ParkedPayment(order_id, payment_id, payment, parked_at, attempts, published_at)
