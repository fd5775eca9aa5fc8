"""The two event types on the wire, as the apps publish them, and what is refused.

The apps define the contract (docs/events.md): one JSON object per message, no attributes
needed. Values are kept as sent: text byte for byte (no case folding, no closed list of
spellings, no length cap but the body's), money as the exact decimal of its JSON digits (bodies
are parsed with every JSON number as a ``Decimal`` from its own text, never through a float), a
date-only ``creation_date`` as a date. Validation covers what correctness needs: required fields
present with their JSON types (no coercion: a quantity of ``"3"`` is refused), ids positive
64-bit integers, quantity a positive 32-bit integer, price positive and within
``DECIMAL(38, 18)``, times real instants with an offset and dates within sane bounds, an
``updated_at`` no earlier than ``creation_date``, and (:func:`check_event_times`, which needs
the message's publish time) no event time far after the message was published. A field the
product does not know is kept aside (``unknown_fields``) for the service to count, never a
reason to refuse; a ``schema_version`` attribute is not read: the body decides.
Anything refused raises :class:`~ecom_shared.errors.InvalidMessage` with a reason code and a
payload-free detail.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Final, TypeVar

import jiter
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)

from ecom_shared.error_text import clip
from ecom_shared.errors import InvalidMessage

EVENT_TYPE_ATTRIBUTE: Final = "event_type"
MAX_BODY_BYTES: Final = 64 * 1024

_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_MAX_ID = 2**63 - 1
_MAX_INT32 = 2**31 - 1
_MAX_DIGITS = 38
_MAX_PLACES = 18
_FIRST_ZONE = timedelta(hours=14)  # UTC+14 (Kiribati) starts every day first
MAX_AHEAD: Final = timedelta(hours=1)
"""How far after its message's publish time an event time may lie, by default."""


def _time_text(value: object) -> object:
    """Times come as ISO 8601 text (``YYYY-MM-DD...``). pydantic's lax parsing would also take
    a Unix timestamp (a number, or digits in a string), which no app sends and which would read
    as an instant. An hour past 23 (``2023-09-01T24:01:30Z``) gets a reason of its own: it
    names no instant. Plain string tests, no regex: this runs for every event.
    (A ``date`` or ``datetime`` object passes: events built in Python, never from JSON.)"""
    if type(value) is str and value[4:5] == "-":
        hour, colon, _ = value[11:].partition(":")
        if colon and hour.isdigit() and int(hour) > 23:  # noqa: PLR2004 - a day's last hour
            raise ValueError(f"hour {hour} is not an instant (hours run from 00 to 23)")
        return value
    if isinstance(value, date):
        return value
    raise ValueError("expected an ISO 8601 date or time (YYYY-MM-DD...) as a JSON string")


def _price(value: object) -> Decimal:
    """A positive JSON number that fits ``DECIMAL(38, 18)``, checked from its digits in one
    pass (pydantic's ``max_digits``/``decimal_places`` cost more than the rest of an order)."""
    if type(value) is int:  # a JSON integer is a price too; a bool is not
        value = Decimal(value)
    elif type(value) is not Decimal:
        raise ValueError("expected a JSON number")
    if not value.is_finite() or value <= 0:
        raise ValueError("a price is a positive number")
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    places = max(0, -exponent)
    if places > _MAX_PLACES or max(len(digits), places) + max(0, exponent) > _MAX_DIGITS:
        raise ValueError(
            f"a price has at most {_MAX_DIGITS} digits, {_MAX_PLACES} of them after the point"
        )
    return value


# Times are parsed from text (lax mode), their bounds checked by pydantic-core on the instant.
# A time keeps the offset it was sent with; acsylla binds an aware datetime as its instant.
EventTime = Annotated[
    AwareDatetime, BeforeValidator(_time_text), Strict(False), Field(ge=_EARLIEST, lt=_LATEST)
]
CreationDate = Annotated[
    Annotated[AwareDatetime, Strict(False), Field(ge=_EARLIEST, lt=_LATEST)]
    | Annotated[date, Strict(False), Field(ge=_EARLIEST.date(), lt=_LATEST.date())],
    Field(union_mode="left_to_right"),
    BeforeValidator(_time_text),
]
Id = Annotated[int, Field(gt=0, le=_MAX_ID)]
Money = Annotated[Decimal, BeforeValidator(_price)]
"""Positive, at most 38 significant digits with at most 18 after the point: every price fits
``DECIMAL(38, 18)``, the widest decimal Spark and DuckDB sum exactly (``1e400`` is refused)."""


class EventType(StrEnum):
    ORDER = "order"
    PAYMENT = "payment"


class _Event(BaseModel):
    # Strict: a JSON value must have its field's type. Extra fields are kept, not refused.
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    @property
    def unknown_fields(self) -> list[str]:
        """Names of the fields the body had that the product does not know."""
        return list(self.model_extra or ())


class Order(_Event):
    """An order as the apps emit it. ``updated_at``, when an app sends it, orders versions of
    the same order; otherwise the version published last wins."""

    order_id: Id
    customer_id: Id
    item: str
    quantity: int = Field(ge=1, le=_MAX_INT32)
    price: Money
    shipping_address: str
    order_status: str
    creation_date: CreationDate
    updated_at: EventTime | None = None

    @model_validator(mode="after")
    def _updated_after_creation(self) -> Order:
        if self.updated_at is not None and self.updated_at < self.created_at_the_earliest:
            raise ValueError("updated_at is before creation_date")
        return self

    @property
    def created_at(self) -> datetime:
        """The creation instant; a date-only ``creation_date`` is taken as that day's start
        in UTC."""
        day = self.creation_date
        if isinstance(day, datetime):
            return day
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    @property
    def created_at_the_earliest(self) -> datetime:
        """The earliest instant ``creation_date`` can name: the instant itself, or for a date
        (whose time zone the app does not say) that day's start in the first zone to reach it,
        UTC+14."""
        if isinstance(self.creation_date, datetime):
            return self.creation_date
        return self.created_at - _FIRST_ZONE

    @property
    def created_on(self) -> date:
        """The creation day as sent: the date itself, or a time's date in its own offset."""
        if isinstance(self.creation_date, datetime):
            return self.creation_date.date()
        return self.creation_date


class Payment(_Event):
    """A payment for one order. It may arrive before its order."""

    payment_id: Id
    order_id: Id
    payment_method: str
    card_last_four: str | None = None
    payment_status: str
    payment_datetime: EventTime


EventT = TypeVar("EventT", Order, Payment)


def parse_event(
    model: type[EventT], data: bytes | None, attributes: dict[str, str] | None
) -> EventT:
    """Validate one message body; raise :class:`InvalidMessage` if it can never be processed."""
    expected = EventType.ORDER if model is Order else EventType.PAYMENT
    declared = (attributes or {}).get(EVENT_TYPE_ATTRIBUTE)
    if declared is not None and declared != expected:
        raise InvalidMessage("wrong_event_type", f"expected {expected}, message says {declared!r}")
    body = parse_body(data)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidMessage(_reason(exc), _detail(exc)) from None


def check_event_times(
    event: Order | Payment, published: datetime, max_ahead: timedelta = MAX_AHEAD
) -> None:
    """Refuse an event whose times lie more than ``max_ahead`` after ``published``, the
    message's ``publishTime``: raise :class:`InvalidMessage` (``invalid_value``).

    An event time decides between versions, so one far ahead would outrank every later
    version for ever (an ``updated_at`` in 2099 could never be corrected). ``publishTime`` is
    the server's clock and every redelivery keeps it, so a replay is judged the same way
    whenever it comes. The margin allows for app clocks ahead of Pub/Sub's. Checked:
    ``updated_at``, ``payment_datetime``, and ``creation_date`` (for a date, the earliest
    instant it can name).
    """
    latest = published + max_ahead
    if isinstance(event, Payment):
        if event.payment_datetime > latest:
            raise _ahead("payment_datetime", published, max_ahead)
        return
    if event.updated_at is not None and event.updated_at > latest:
        raise _ahead("updated_at", published, max_ahead)
    if event.created_at_the_earliest > latest:
        raise _ahead("creation_date", published, max_ahead)


def _ahead(name: str, published: datetime, max_ahead: timedelta) -> InvalidMessage:
    return InvalidMessage(
        "invalid_value",
        f"{name}: later than the message's publish time ({published.isoformat()}) plus "
        f"{max_ahead.total_seconds():g} s; an event time cannot lie in the future",
    )


def parse_body(data: bytes | None) -> dict[str, object]:
    """The body as a JSON object, numbers with a fraction or exponent as exact decimals."""
    if not data:
        raise InvalidMessage("empty_body", "message has no data")
    if len(data) > MAX_BODY_BYTES:
        raise InvalidMessage("body_too_large", f"{len(data)} bytes > {MAX_BODY_BYTES}")
    try:
        body = jiter.from_json(data, allow_inf_nan=False, float_mode="decimal")
    except ValueError as exc:  # bad UTF-8 or JSON, a lone surrogate, nesting past 200 levels
        raise InvalidMessage("invalid_json", clip(str(exc), 200)) from None
    if not isinstance(body, dict):
        raise InvalidMessage("invalid_json", f"body is a JSON {type(body).__name__}, not an object")
    return body


def _reason(exc: ValidationError) -> str:
    kinds = {err["type"] for err in exc.errors(include_url=False, include_input=False)}
    if "missing" in kinds:
        return "missing_field"
    return "invalid_value"


def _detail(exc: ValidationError) -> str:
    """A payload-free account of what failed: field path, error type and message."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']} [{err['type']}]")
    return "; ".join(parts)


def order_id_hint(data: bytes | None) -> int | None:
    """The ``order_id`` a message body names, if it names a valid one: for failure logs only,
    never trusted for processing. Costs a JSON parse, so it is called on failures only; it
    never raises, whatever the bytes (an id of 4,000 digits is no hint either)."""
    if not data or len(data) > MAX_BODY_BYTES:
        return None
    try:
        value = jiter.from_json(data, allow_inf_nan=False).get("order_id")
    except Exception:  # noqa: BLE001 - a failure path must not raise: no hint is the answer
        return None
    return value if type(value) is int and 0 < value <= _MAX_ID else None
