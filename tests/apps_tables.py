"""What the tables must hold after an apps' stream (:mod:`tests.apps_stream`), worked out from
the published messages by the contract's simple rules, and the tables as read back with CQL of
our own; no product code.

The rules: of an order's versions the one published last wins (there is no ``updated_at``); of
an order's payments the later ``payment_datetime`` wins, at the same millisecond the higher
``payment_id % 1000``; a payment whose order never comes stays parked; a payment whose time is
no instant is only on the dead-letter topic. :func:`expected_from` applies them to any
orders and payments in publish order (:mod:`tests.manifest_stream` reads the demo's manifest
into them); :func:`expected_state` to an apps' stream.

Values are read so that nothing is lost on the way: text as its bytes (``textAsBlob``), money
as the digits Cassandra holds (``CAST(price AS text)``: acsylla cannot decode a decimal), the
date as its text, times as epoch milliseconds (``toUnixTimestamp``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import acsylla

from ecom_shared.cassandra.session import Session
from ecom_shared.settings import CassandraSettings
from tests.apps_stream import AppsStream, Sent, is_instant

TEXT: Final = ("item", "shipping_address", "order_status")
PAYMENT_TEXT: Final = ("payment_method", "card_last_four", "payment_status")
PAYMENT_COLUMNS: Final = ("payment_id", "paid_ms", *PAYMENT_TEXT)
SOURCES: Final = frozenset({"stream", "order", "dlq"})
ORDER_COLUMNS: Final = (
    "order_id, customer_id, quantity, CAST(price AS text) AS price, "
    + "".join(f"textAsBlob({c}) AS {c}, " for c in TEXT + PAYMENT_TEXT)
    + "CAST(order_created_on AS text) AS created_on, "
    "toUnixTimestamp(order_created_at) AS created_ms, payment_id, "
    "toUnixTimestamp(paid_at) AS paid_ms, payment_source"
)
DLQ_COLUMNS: Final = (
    "order_id, payment_id, "
    + "".join(f"textAsBlob({c}) AS {c}, " for c in PAYMENT_TEXT)
    + "toUnixTimestamp(paid_at) AS paid_ms"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)

Row = dict[str, Any]


def instant_millis(text: str) -> int:
    return (datetime.fromisoformat(text) - _EPOCH) // _MILLISECOND


def midnight_millis(day: str) -> int:
    """A date's first instant in UTC, in milliseconds since the epoch."""
    moment = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
    return (moment - _EPOCH) // _MILLISECOND


def payment_rank(payment: Sent) -> tuple[int, int]:
    return instant_millis(payment.value["payment_datetime"]), payment.value["payment_id"] % 1000


@dataclass(frozen=True)
class Expected:
    orders: dict[int, Sent]
    """The version published last, by order id."""
    payments: dict[int, Sent]
    """The winning payment of each order that has a valid one."""
    parked: dict[tuple[int, int], Sent]
    """Valid payments whose order never came, by (order_id, payment_id)."""
    dead_letters: Counter[bytes]
    """Bodies of the payments whose time is no instant, one per publish."""
    invalid_payment_ids: frozenset[int]


def expected_state(stream: AppsStream) -> Expected:
    return expected_from(stream.messages("orders"), stream.messages("payments"))


def expected_from(orders_sent: Iterable[Sent], payments_sent: Iterable[Sent]) -> Expected:
    """The tables' state after these orders and payments, each in publish order."""
    orders: dict[int, Sent] = {}
    for order in orders_sent:
        orders[order.order_id] = order  # in publish order: the last one stays
    valid: dict[int, list[Sent]] = {}
    dead: Counter[bytes] = Counter()
    invalid: set[int] = set()
    for payment in payments_sent:
        if is_instant(payment.value["payment_datetime"]):
            valid.setdefault(payment.order_id, []).append(payment)
        else:
            dead[payment.body] += 1
            invalid.add(payment.value["payment_id"])
    winners: dict[int, Sent] = {}
    parked: dict[tuple[int, int], Sent] = {}
    for order_id, payments in valid.items():
        if order_id not in orders:
            parked.update({(order_id, p.value["payment_id"]): p for p in payments})
            continue
        winners[order_id] = max(payments, key=payment_rank)
        ties = {p.body for p in payments if payment_rank(p) == payment_rank(winners[order_id])}
        assert len(ties) == 1, f"order {order_id}: two different payments rank the same"
    return Expected(orders, winners, parked, dead, frozenset(invalid))


# -- the tables as stored ---------------------------------------------------------------------


async def read_tables(
    session: Session, settings: CassandraSettings
) -> tuple[dict[int, Row], dict[tuple[int, int], Row]]:
    """Every row of the orders table by order id, every row of the DLQ table by its key."""
    orders = await _select_all(
        session, f"SELECT {ORDER_COLUMNS} FROM {settings.keyspace}.{settings.orders_table}"
    )
    parked = await _select_all(
        session, f"SELECT {DLQ_COLUMNS} FROM {settings.keyspace}.{settings.dlq_table}"
    )
    return (
        {r["order_id"]: r for r in orders},
        {(r["order_id"], r["payment_id"]): r for r in parked},
    )


async def _select_all(session: Session, cql: str) -> list[Row]:
    rows: list[Row] = []
    page_state: bytes | None = None
    while True:
        statement = acsylla.create_statement(cql, page_size=1000, page_state=page_state)
        result = await session.execute(statement)
        rows.extend(row.as_dict() for row in result)
        if not result.has_more_pages():
            return rows
        page_state = result.page_state()


# -- comparing ----------------------------------------------------------------------------------


def order_cells(sent: Sent) -> Row:
    """An order version's columns as :data:`ORDER_COLUMNS` reads them."""
    v = sent.value
    return {
        "customer_id": v["customer_id"],
        "quantity": v["quantity"],
        "price": sent.price_text,  # the JSON digits themselves
        "created_on": v["creation_date"],
        "created_ms": midnight_millis(v["creation_date"]),
        **{c: v[c].encode("utf-8") for c in TEXT},
    }


def payment_cells(sent: Sent) -> Row:
    """A payment's columns as :data:`ORDER_COLUMNS` and :data:`DLQ_COLUMNS` read them."""
    v = sent.value
    return {
        "payment_id": v["payment_id"],
        "paid_ms": instant_millis(v["payment_datetime"]),
        **{c: v[c].encode("utf-8") for c in PAYMENT_TEXT},
    }


def compare_orders(expected: Expected, rows: dict[int, Row]) -> list[str]:
    """Every difference between the orders table and the orders and payments sent."""
    found = [f"order {i}: stored, never sent" for i in sorted(rows.keys() - expected.orders)]
    for order_id, sent in expected.orders.items():
        row = rows.get(order_id)
        if row is None:
            found.append(f"order {order_id}: missing")
            continue
        found += differences(f"order {order_id}", order_cells(sent), row)
        if row["price"] is not None and Decimal(row["price"]) != sent.value["price"]:
            found.append(f"order {order_id} price: {row['price']} != {sent.value['price']}")
        payment = expected.payments.get(order_id)
        if payment is None:
            unpaid = dict.fromkeys((*PAYMENT_COLUMNS, "payment_source"))
            found += differences(f"order {order_id} (no payment)", unpaid, row)
            continue
        found += differences(f"order {order_id} payment", payment_cells(payment), row)
        if row["payment_source"] not in SOURCES:
            found.append(f"order {order_id} payment_source: {row['payment_source']!r}")
    return found


def compare_parked(expected: Expected, parked: dict[tuple[int, int], Row]) -> list[str]:
    """Every difference between the DLQ table and the payments whose order never came."""
    found = [f"parked {k}: never expected there" for k in sorted(parked.keys() - expected.parked)]
    for key, sent in expected.parked.items():
        row = parked.get(key)
        if row is None:
            found.append(f"parked {key}: missing")
        else:
            found += differences(f"parked {key}", payment_cells(sent), row)
    return found


def differences(where: str, want: Row, row: Row) -> list[str]:
    """Columns whose stored value is not the one sent, of the same type."""
    return [
        f"{where} {column}: stored {_short(row[column])}, sent {_short(value)}"
        for column, value in want.items()
        if row[column] != value or type(row[column]) is not type(value)
    ]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
