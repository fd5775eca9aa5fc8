"""Write timestamps (``ecom_shared.versions``): which version of an order or a payment wins."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ecom_shared.clock import to_micros
from ecom_shared.events import Order, Payment, parse_event
from ecom_shared.versions import order_version_micros, payment_version_micros
from tests.unit.shared.test_events import APPS_ORDER, APPS_PAYMENT, ORDER, body

PUBLISHED = datetime(2026, 2, 1, 12, 0, 0, 123_000, tzinfo=UTC)
PAID = datetime(2023, 9, 1, 17, 1, 30, tzinfo=UTC)  # the apps' example payment
CLOCK_IN_2100 = to_micros(datetime(2100, 1, 1, tzinfo=UTC))


def order_version(data: bytes, published: datetime = PUBLISHED) -> int:
    return order_version_micros(parse_event(Order, data, None), published, data)


def payment(**changes: object) -> Payment:
    return parse_event(Payment, APPS_PAYMENT, None).model_copy(update=changes)


# Orders.


def test_an_order_version_is_its_update_time_else_its_publish_time_to_the_millisecond() -> None:
    assert order_version(APPS_ORDER) // 1000 == to_micros(PUBLISHED) // 1000
    updated = body(ORDER, updated_at="2026-03-01T00:00:00.000999Z")
    assert order_version(updated) // 1000 == to_micros(datetime(2026, 3, 1, tzinfo=UTC)) // 1000


def test_the_sub_millisecond_digits_are_the_bodys_crc32() -> None:
    assert order_version(APPS_ORDER) % 1000 == zlib.crc32(APPS_ORDER) % 1000


def test_versions_that_tie_on_time_get_different_timestamps_the_same_on_every_delivery() -> None:
    shipped = body(ORDER, order_status="Shipped")
    pending = body(ORDER, order_status="Pending")  # published in the same request
    assert order_version(shipped) != order_version(pending)
    assert order_version(shipped) == order_version(shipped)  # a redelivery: same bytes, time
    same_update = [body(ORDER, order_status=s, updated_at="2026-01-01T00:00:00Z") for s in "AB"]
    assert order_version(same_update[0]) != order_version(same_update[1])


def test_a_later_millisecond_always_wins_whatever_the_digits() -> None:
    later = PUBLISHED + timedelta(milliseconds=1)
    for data in (body(ORDER, item=f"item {n}") for n in range(50)):
        assert order_version(data, later) > order_version(APPS_ORDER)


# Payments: the rule, in its three steps.


def test_a_later_payment_time_wins_whatever_the_id_and_the_publish_time() -> None:
    earlier = payment_version_micros(payment(payment_id=1999), PUBLISHED + timedelta(days=30))
    later = payment_version_micros(payment(payment_datetime=PAID + timedelta(seconds=1)), PAID)
    assert later > earlier


def test_at_the_same_second_the_ids_last_three_digits_decide() -> None:
    first = payment(payment_id=1017)
    second = payment(payment_id=2018, payment_datetime=PAID + timedelta(milliseconds=999))
    assert payment_version_micros(second, PUBLISHED) > payment_version_micros(first, PUBLISHED)
    assert payment_version_micros(first, PUBLISHED + timedelta(days=9)) < (
        payment_version_micros(second, PUBLISHED)
    )


def test_a_status_change_published_later_wins() -> None:
    """The issue's case: the same payment and ``payment_datetime``, a new status, later."""
    pending, completed = payment(payment_status="Pending"), payment(payment_status="Completed")
    for after in (timedelta(milliseconds=1), timedelta(seconds=1), timedelta(minutes=5)):
        assert payment_version_micros(completed, PAID + after) > payment_version_micros(
            pending, PAID
        )
    assert payment_version_micros(completed, PUBLISHED) == payment_version_micros(
        completed, PUBLISHED + timedelta(microseconds=999)
    )  # the publish time counts to the millisecond, as a CQL timestamp keeps it


@given(
    st.integers(-3_600_000, 100 * 365 * 86_400_000),
    st.integers(1, 10**12),
)
def test_of_two_versions_of_one_payment_the_one_published_later_never_loses(
    age_millis: int, later_by_millis: int
) -> None:
    first = PAID + timedelta(milliseconds=age_millis)
    second = first + timedelta(milliseconds=later_by_millis)
    assert payment_version_micros(payment(), second) >= payment_version_micros(payment(), first)


@given(st.integers(-32_768, 32_767), st.integers(1, 1000))
def test_within_32_seconds_of_the_payment_time_every_millisecond_counts(
    age_millis: int, later_by_millis: int
) -> None:
    first = PAID + timedelta(milliseconds=age_millis)
    second = PAID + timedelta(milliseconds=min(age_millis + later_by_millis, 32_767))
    if second > first:
        assert payment_version_micros(payment(), second) > payment_version_micros(payment(), first)


def test_the_publish_time_resolution_is_relative_to_the_age() -> None:
    """Further from the payment time the publish time counts coarser: 64 ms an hour later."""
    hour = PAID + timedelta(hours=1)

    def version(at: datetime) -> int:
        return payment_version_micros(payment(), at)

    assert version(hour + timedelta(milliseconds=70)) > version(hour)
    assert version(hour + timedelta(days=1, seconds=3)) > version(hour + timedelta(days=1))
    # The limit of one 64-bit timestamp: two versions published a second apart five months
    # after the payment time tie (and would mix); the apps publish a payment once, at once.
    months = PAID + timedelta(days=150)
    assert version(months + timedelta(seconds=1)) == version(months)


SINCE_2000 = datetime(2000, 1, 1, tzinfo=UTC)
CENTURY_SECONDS = 100 * 365 * 86_400


@given(
    st.integers(0, CENTURY_SECONDS),
    st.integers(1, 2**63 - 1),
    st.integers(-3_600_000, CENTURY_SECONDS * 1000),
)
def test_every_payment_version_is_a_positive_64_bit_number_above_any_clock(
    paid_seconds: int, payment_id: int, age_millis: int
) -> None:
    paid = SINCE_2000 + timedelta(seconds=paid_seconds)
    published = paid + timedelta(milliseconds=age_millis)
    version = payment_version_micros(
        payment(payment_datetime=paid, payment_id=payment_id), published
    )
    assert CLOCK_IN_2100 < version < 2**63
