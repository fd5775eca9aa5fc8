"""Every figure of the report, defined once: SQL that DuckDB and Spark SQL both run over the
relations of :mod:`ecom_report.columns`, and the assembly of their rows into :class:`Figures`.

Values are grouped as stored (the apps' spellings, byte for byte; a missing value is grouped
under :data:`MISSING`). Money is summed as ``DECIMAL(38, 18)``, exactly: an engine raises
rather than round or wrap (DuckDB always; Spark with the settings of :mod:`ecom_report.spark`),
so a total beyond 10^20 stops the report with an error instead of printing a wrong figure.
Revenue counts an order when its payment's status is :data:`COMPLETED`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, NamedTuple, Protocol

from ecom_shared.clock import to_millis

COMPLETED: Final = "Completed"
"""The payment status that makes an order's value revenue."""
MISSING: Final = "(none)"
"""The key a missing value (a null column) is grouped under."""


class Bucket(NamedTuple):
    label: str
    low_seconds: int | None
    """Inclusive; ``None``: no lower bound."""
    high_seconds: int | None
    """Exclusive; ``None``: no upper bound."""


WAIT_BUCKETS: Final = (
    Bucket("before order", None, 0),
    Bucket("< 1 s", 0, 1),
    Bucket("1-10 s", 1, 10),
    Bucket("10-60 s", 10, 60),
    Bucket("1-10 min", 60, 600),
    Bucket("10-60 min", 600, 3600),
    Bucket("1-24 h", 3600, 86400),
    Bucket(">= 1 day", 86400, None),
)
"""How long a payment came after its order (``paid_at - order_created_at``)."""

AGE_BUCKETS: Final = (
    Bucket("< 1 min", None, 60),
    Bucket("1-10 min", 60, 600),
    Bucket("10-60 min", 600, 3600),
    Bucket("1-24 h", 3600, 86400),
    Bucket(">= 1 day", 86400, None),
)
"""How long a parked payment has waited in the DLQ."""


def _bucket_case(milliseconds: str, buckets: Sequence[Bucket]) -> str:
    """A ``CASE`` giving the index of the bucket that ``milliseconds`` falls in."""
    arms = [
        f"WHEN {milliseconds} < {bucket.high_seconds * 1000} THEN {index}"
        for index, bucket in enumerate(buckets)
        if bucket.high_seconds is not None
    ]
    return f"CASE {' '.join(arms)} ELSE {len(buckets) - 1} END"


_LINES: Final = (
    "WITH lines AS (SELECT o.*, "
    "CAST(price * quantity AS DECIMAL(38, 18)) AS line_value, "
    f"CASE WHEN payment_status = '{COMPLETED}' "
    "THEN CAST(price * quantity AS DECIMAL(38, 18)) END AS paid_value "
    "FROM orders o) "
)

QUERIES: Final[Mapping[str, str]] = {
    "totals": _LINES
    + (
        "SELECT COUNT(*), COUNT(payment_id), SUM(paid_value), SUM(line_value), "
        "COUNT(DISTINCT customer_id), SUM(quantity), MIN(created_on), MAX(created_on) "
        "FROM lines"
    ),
    "by_day": _LINES
    + (
        "SELECT created_on, COUNT(*), COUNT(payment_id), SUM(paid_value) "
        "FROM lines GROUP BY created_on ORDER BY created_on"
    ),
    "by_item": _LINES
    + ("SELECT item, COUNT(*), SUM(quantity), SUM(paid_value) FROM lines GROUP BY item"),
    "by_order_status": "SELECT order_status, COUNT(*) FROM orders GROUP BY order_status",
    "by_payment_method": _LINES
    + (
        "SELECT payment_method, COUNT(*), SUM(paid_value) FROM lines "
        "WHERE payment_id IS NOT NULL GROUP BY payment_method"
    ),
    "by_payment_status": (
        "SELECT payment_status, COUNT(*) FROM orders "
        "WHERE payment_id IS NOT NULL GROUP BY payment_status"
    ),
    "by_payment_source": (
        "SELECT payment_source, COUNT(*) FROM orders "
        "WHERE payment_id IS NOT NULL GROUP BY payment_source"
    ),
    "payment_wait": (
        "SELECT bucket, COUNT(*) FROM (SELECT "
        f"{_bucket_case('paid_ms - created_ms', WAIT_BUCKETS)} AS bucket FROM orders "
        "WHERE paid_ms IS NOT NULL AND created_ms IS NOT NULL) waits GROUP BY bucket"
    ),
    "parked": ("SELECT COUNT(*), COUNT(DISTINCT order_id), MIN(parked_ms) FROM parked"),
    "parked_age": (
        "SELECT bucket, COUNT(*) FROM (SELECT "
        f"{_bucket_case('{as_of_ms} - parked_ms', AGE_BUCKETS)} AS bucket FROM parked "
        "WHERE parked_ms IS NOT NULL) ages GROUP BY bucket"
    ),
}
"""Each figure's query. ``{as_of_ms}`` is replaced by the report's instant, an integer."""


class Engine(Protocol):
    """Runs one of :data:`QUERIES` over ``orders`` and ``parked``; rows as tuples."""

    def query(self, sql: str) -> Sequence[Sequence[Any]]: ...


@dataclass(frozen=True, slots=True)
class Day:
    day: str
    orders: int
    orders_paid: int
    revenue_paid: str


@dataclass(frozen=True, slots=True)
class ItemFigures:
    orders: int
    units: int
    revenue: str


@dataclass(frozen=True, slots=True)
class MethodFigures:
    orders: int
    revenue: str


@dataclass(frozen=True, slots=True)
class BucketCount:
    label: str
    low_seconds: int | None
    high_seconds: int | None
    count: int


@dataclass(frozen=True, slots=True)
class Figures:
    """The report's figures; :meth:`as_json` is ``report.json``. Money is a decimal string."""

    as_of: str
    orders: int
    orders_paid: int
    revenue_paid: str
    order_value: str
    customers: int
    units: int
    first_day: str | None
    last_day: str | None
    by_day: list[Day]
    by_item: dict[str, ItemFigures]
    by_order_status: dict[str, int]
    by_payment_method: dict[str, MethodFigures]
    by_payment_status: dict[str, int]
    by_payment_source: dict[str, int]
    payment_wait: list[BucketCount]
    payments_parked: int
    parked_orders: int
    oldest_parked_age_seconds: int | None
    parked_age: list[BucketCount]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def money(value: Decimal | None) -> str:
    """An exact decimal as plain digits, without trailing zeros (``None``, an empty sum: 0)."""
    if value is None:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _key(value: Any) -> str:
    return MISSING if value is None else str(value)


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _buckets(rows: Sequence[Sequence[Any]], buckets: Sequence[Bucket]) -> list[BucketCount]:
    counts = {int(index): int(count) for index, count in rows}
    return [
        BucketCount(b.label, b.low_seconds, b.high_seconds, counts.get(i, 0))
        for i, b in enumerate(buckets)
    ]


def compute(engine: Engine, as_of: datetime) -> Figures:
    """Run every query on ``engine``; ages are counted up to ``as_of``."""
    as_of_ms = to_millis(as_of)

    def run(name: str) -> Sequence[Sequence[Any]]:
        return engine.query(QUERIES[name].replace("{as_of_ms}", str(as_of_ms)))

    (orders, paid, revenue, value, customers, units, first, last), *_ = run("totals")
    (parked, parked_orders, oldest_ms), *_ = run("parked")
    return Figures(
        as_of=as_of.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        orders=int(orders),
        orders_paid=int(paid),
        revenue_paid=money(revenue),
        order_value=money(value),
        customers=int(customers),
        units=int(units or 0),
        first_day=_day(first),
        last_day=_day(last),
        by_day=[
            Day(_day(day) or MISSING, int(n), int(p), money(r)) for day, n, p, r in run("by_day")
        ],
        by_item={
            _key(item): ItemFigures(int(n), int(u or 0), money(r))
            for item, n, u, r in sorted(run("by_item"), key=lambda row: _key(row[0]))
        },
        by_order_status=_counts(run("by_order_status")),
        by_payment_method={
            _key(method): MethodFigures(int(n), money(r))
            for method, n, r in sorted(run("by_payment_method"), key=lambda row: _key(row[0]))
        },
        by_payment_status=_counts(run("by_payment_status")),
        by_payment_source=_counts(run("by_payment_source")),
        payment_wait=_buckets(run("payment_wait"), WAIT_BUCKETS),
        payments_parked=int(parked),
        parked_orders=int(parked_orders),
        oldest_parked_age_seconds=None
        if oldest_ms is None
        else (as_of_ms - int(oldest_ms)) // 1000,
        parked_age=_buckets(run("parked_age"), AGE_BUCKETS),
    )


def _counts(rows: Sequence[Sequence[Any]]) -> dict[str, int]:
    return {_key(key): int(count) for key, count in sorted(rows, key=lambda row: _key(row[0]))}
