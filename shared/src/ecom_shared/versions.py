"""Write timestamps: how Cassandra chooses between two versions of an order or of a payment.

Cassandra keeps, cell by cell, the value written with the larger timestamp, and at equal
timestamps the larger *value*, again cell by cell: two different versions written with one
timestamp end as a row equal to neither. So each rule here gives every version a timestamp of
its own, computed from the message alone (its body and its Pub/Sub ``publishTime``, which the
server sets and every redelivery keeps): a replay writes the same timestamp again and changes
nothing, whatever the delivery order.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Final

from ecom_shared.clock import to_millis
from ecom_shared.events import Order, Payment

# Orders.

_TIE_DIGITS: Final = 1000  # the sub-millisecond digits of a microsecond timestamp


def order_version_micros(order: Order, publish_time: datetime, body: bytes) -> int:
    """The write timestamp of an order version: its ``updated_at``, else its publish time, to
    the millisecond, and in the three sub-millisecond digits a tie-breaker taken from the body
    (its CRC-32, modulo 1000).

    Ties are real: every message of one publish request has the same ``publishTime`` (which
    has millisecond resolution), and an app may send two versions with one ``updated_at``.
    The tie-breaker is deterministic across redeliveries because it depends only on the bytes
    Pub/Sub delivers, which a redelivery or a duplicate delivery keeps; any process computes
    the same value (CRC-32 is a fixed function, unlike Python's salted ``hash``).

    What it costs: one CRC-32 over the body (a fraction of a microsecond for the apps' few
    hundred bytes); an ``updated_at`` counts to the millisecond only; of two versions that
    tie, the winner is fixed but arbitrary (it is not the one published last); and one pair
    of tied bodies in a thousand shares the three digits and still mixes.
    """
    moment = order.updated_at if order.updated_at is not None else publish_time
    return to_millis(moment) * _TIE_DIGITS + zlib.crc32(body) % _TIE_DIGITS


# Payments.

_SINCE: Final = datetime(2000, 1, 1, tzinfo=UTC)  # no event time is earlier (events.py)
_ID_DIGITS: Final = 1000
_AGE_BITS: Final = 21
_MANTISSA_BITS: Final = 15
_HALF: Final = 1 << (_AGE_BITS - 1)
_MAGNITUDE_MAX: Final = _HALF - 1
_ABOVE_CLOCKS: Final = 1 << 52
"""Added to every payment version: 2112 in microseconds, above any clock's timestamp."""


def payment_version_micros(payment: Payment, published_at: datetime) -> int:
    """The write timestamp of a payment version, used by every write of payment columns: the
    row's payment columns, the DLQ insert, and the DLQ delete of the version a join stored.

    Of two versions, the one that wins has, compared in this order:

    1. the later ``payment_datetime``, to the second (the apps send seconds): of two payments
       for one order the later replaces the earlier (a retry replaces a failed attempt), and
       so does a version of one payment dated later;
    2. the higher ``payment_id % 1000``: two payments of one order dated in one second never
       mix;
    3. the later publish time (``published_at``, the message's ``publishTime``): of two
       versions of one payment with one ``payment_datetime`` (a status change that keeps it,
       ``Pending`` then ``Completed``), the one published later.

    One signed 64-bit timestamp cannot hold all three exactly: the seconds since 2000 and the
    id's digits take 42 of its 63 bits. So the third is how long after (or before, for an app
    clock ahead of Pub/Sub's) the payment's second the version was published, in the low 21
    bits, coded like a floating-point number: to the millisecond within 32.8 seconds of it,
    then to 1/32,768 of that distance (64 ms an hour later, 2 s a day later, 35 minutes three
    years later). Versions of one payment published closer together than that tie, and then
    Cassandra mixes them cell by cell.

    The result is a version number in Cassandra's microsecond field, not a time (about
    1.5e18 for a payment of 2023), and always above any clock's timestamp (4.1e15 in 2100):
    a payment written with a clock's timestamp, or a cell written or deleted without
    ``USING TIMESTAMP`` (by hand, or a stub's removal), never outranks a payment version.
    """
    paid_seconds = (payment.payment_datetime - _SINCE) // timedelta(seconds=1)
    rank = paid_seconds * _ID_DIGITS + payment.payment_id % _ID_DIGITS
    paid_millis = to_millis(_SINCE) + paid_seconds * 1000
    age_code = _age_code(to_millis(published_at) - paid_millis)
    return _ABOVE_CLOCKS + (rank << _AGE_BITS | age_code)


def _age_code(age_millis: int) -> int:
    """A 21-bit code that grows with ``age_millis`` (which may be negative)."""
    if age_millis >= 0:
        return _HALF + _magnitude_code(age_millis)
    return _HALF - 1 - _magnitude_code(-age_millis - 1)


def _magnitude_code(millis: int) -> int:
    """A 20-bit code that grows with ``millis`` >= 0: the value itself below 2**15, then a
    5-bit exponent and the 15 bits that follow the leading one (a float without its sign)."""
    if millis < 1 << _MANTISSA_BITS:
        return millis
    exponent = millis.bit_length() - 1  # >= 15
    fraction = (millis >> (exponent - _MANTISSA_BITS)) & ((1 << _MANTISSA_BITS) - 1)
    code = (exponent - _MANTISSA_BITS + 1) << _MANTISSA_BITS | fraction
    return min(code, _MAGNITUDE_MAX)
