"""Whether an existing table can hold what the product writes: its columns as Cassandra
describes them (``system_schema.columns``) against the product's own definition.

``CREATE TABLE IF NOT EXISTS`` silently keeps a table that already exists, whatever its
columns: another application's table of the same name (the original course project's
``orders_payments_facts``, with ``price double`` and times as ``text``), or one made by
another version of the product. This module tells them apart:

- a column of ours with another type, or another primary key, makes the table unusable:
  :class:`SchemaMismatch`, naming each such column with both types, before anything is written;
- a column of ours that is missing can be added (``ecom-setup`` does; a service asks for it);
- a column the product does not know is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import acsylla

from ecom_shared.errors import PipelineError

ColumnKind = Literal["partition_key", "clustering", "regular", "static"]

_ROLE = {"partition_key": " (partition key)", "clustering": " (clustering column)"}
_COLUMNS_QUERY = (
    "SELECT column_name, type, kind, position FROM system_schema.columns "
    "WHERE keyspace_name = ? AND table_name = ?"
)
_PAGE_SIZE = 1000


class Column(NamedTuple):
    """One column: its name, its CQL type as ``system_schema.columns`` spells it (``bigint``,
    ``text``, ``decimal``, ``timestamp``...), its kind, and its place in its part of the key
    (Cassandra's ``position``: -1 for a column outside the key)."""

    name: str
    type: str
    kind: ColumnKind = "regular"
    position: int = -1

    def describe(self) -> str:
        return self.type + _ROLE.get(self.kind, "" if self.kind == "regular" else f" ({self.kind})")


@dataclass(frozen=True, slots=True)
class TableShape:
    """The columns the product writes in one table, key columns first in key order."""

    columns: tuple[Column, ...]

    @property
    def partition_key(self) -> tuple[str, ...]:
        return _key_of(self.columns, "partition_key")

    @property
    def clustering(self) -> tuple[str, ...]:
        return _key_of(self.columns, "clustering")

    @property
    def types(self) -> dict[str, str]:
        """Every column's name and CQL type."""
        return {column.name: column.type for column in self.columns}

    def column_definitions(self) -> str:
        """The column list and primary key of a ``CREATE TABLE`` statement."""
        columns = [f"{column.name} {column.type}" for column in self.columns]
        return ",\n    ".join([*columns, f"PRIMARY KEY {key_text(self)}"])


def _key_of(columns: Iterable[Column], kind: ColumnKind) -> tuple[str, ...]:
    """A part of the primary key, in key order. Columns without a position (-1, as a unit test
    may give them) keep their given order."""
    ordered = sorted((c for c in columns if c.kind == kind), key=lambda c: c.position)
    return tuple(column.name for column in ordered)


def key_text(shape: TableShape) -> str:
    """The primary key as CQL writes it: ``((order_id), payment_id)``."""
    return "(" + ", ".join([f"({', '.join(shape.partition_key)})", *shape.clustering]) + ")"


class Difference(NamedTuple):
    column: str
    expected: str
    found: str

    def describe(self) -> str:
        return f"{self.column} expected {self.expected}, found {self.found}"


@dataclass(frozen=True, slots=True)
class TableCheck:
    """One table compared with what the product expects of it."""

    table: str
    """``keyspace.table``."""
    setting: str
    """The variable that names the table, for the operator's next step."""
    exists: bool
    differing: tuple[Difference, ...] = ()
    """Columns of ours, or the primary key, that differ: the table cannot be used."""
    missing: tuple[Column, ...] = ()
    """Columns of ours, outside the key, that the table lacks: they can be added."""
    extra: tuple[Column, ...] = ()
    """Columns the product does not know: allowed, left alone."""

    @property
    def compatible(self) -> bool:
        """The table is absent, or holds every column of ours it has with our type and key."""
        return not self.differing

    @property
    def complete(self) -> bool:
        """The table exists and can take every write the product makes."""
        return self.exists and not self.differing and not self.missing

    def mismatch_text(self) -> str:
        """One line: each differing column with both types, then what else the table holds."""
        differing = "; ".join(difference.describe() for difference in self.differing)
        text = f"table {self.table} cannot hold what this product writes: {differing}."
        if self.missing:
            text += f" It lacks {_columns_text(self.missing)}."
        if self.extra:
            text += f" It has columns the product does not know: {_columns_text(self.extra)}."
        return (
            f"{text} Nothing was written. Name another table ({self.setting}), or move this "
            "table's data out and drop it: ecom-setup adds missing columns, never changes a type."
        )

    def incomplete_text(self) -> str:
        if not self.exists:
            return f"table {self.table} does not exist: run ecom-setup"
        return f"table {self.table} lacks {_columns_text(self.missing)}: run ecom-setup"


def _columns_text(columns: Iterable[Column]) -> str:
    return ", ".join(f"{column.name} {column.describe()}" for column in columns)


class SchemaMismatch(PipelineError):
    """An existing table cannot hold what the product writes, or lacks columns it needs: a
    setting or the schema is wrong, and retrying cannot help. Carries every table's check."""

    retriable = False

    def __init__(self, message: str, checks: Sequence[TableCheck]) -> None:
        super().__init__(message)
        self.checks = tuple(checks)


def compare(table: str, setting: str, expected: TableShape, found: Sequence[Column]) -> TableCheck:
    """Compare a table's columns (``found``, as ``system_schema.columns`` lists them; none
    when the table does not exist) with ``expected``. Pure: no I/O."""
    if not found:
        return TableCheck(table, setting, exists=False, missing=expected.columns)
    have = {column.name: column for column in found}
    ours = {column.name for column in expected.columns}
    differing = [
        Difference(column.name, column.describe(), have[column.name].describe())
        for column in expected.columns
        if column.name in have and _differs(column, have[column.name])
    ]
    found_shape = TableShape(tuple(found))
    if (found_shape.partition_key, found_shape.clustering) != (
        expected.partition_key,
        expected.clustering,
    ):
        differing.append(Difference("primary key", key_text(expected), key_text(found_shape)))
    # A missing key column is in the primary key's difference: it can never be added.
    missing = [c for c in expected.columns if c.name not in have and c.kind == "regular"]
    extra = sorted((c for c in found if c.name not in ours), key=lambda c: c.name)
    return TableCheck(table, setting, True, tuple(differing), tuple(missing), tuple(extra))


def _differs(expected: Column, found: Column) -> bool:
    return (expected.type, expected.kind) != (found.type, found.kind)


def require_compatible(checks: Sequence[TableCheck]) -> None:
    """Raise :class:`SchemaMismatch` unless every table is absent or usable once its missing
    columns are added."""
    bad = [check for check in checks if not check.compatible]
    if bad:
        raise SchemaMismatch(" ".join(check.mismatch_text() for check in bad), checks)


def require_complete(checks: Sequence[TableCheck]) -> None:
    """Raise :class:`SchemaMismatch` unless every table exists and can take every write."""
    require_compatible(checks)
    incomplete = [check for check in checks if not check.complete]
    if incomplete:
        raise SchemaMismatch("; ".join(check.incomplete_text() for check in incomplete), checks)


async def read_columns(session: Any, keyspace: str, table: str) -> list[Column]:
    """A table's columns as ``system_schema.columns`` describes them; none if it does not
    exist. Unquoted CQL names are stored in lower case, so they are looked up that way."""
    statement = acsylla.create_statement(
        _COLUMNS_QUERY, parameters=[keyspace.lower(), table.lower()], page_size=_PAGE_SIZE
    )
    columns: list[Column] = []
    while True:
        result = await session.execute(statement)
        columns += [_column(row.as_dict()) for row in result]
        if not result.has_more_pages():
            return columns
        statement.set_page_state(result.page_state())


def _column(row: dict[str, Any]) -> Column:
    return Column(str(row["column_name"]), str(row["type"]), row["kind"], int(row["position"]))
