"""The hand-written CQL decimal encoding that works around acsylla."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from ecom_shared.cassandra.cqltypes import blob_to_decimal, decimal_to_blob


@pytest.mark.parametrize(
    ("value", "blob"),
    [
        (Decimal("476.79"), bytes.fromhex("00000002 00ba3f")),  # scale 2, unscaled 47679
        (Decimal("-1.5"), bytes.fromhex("00000001 f1")),  # scale 1, unscaled -15
        (Decimal("128"), bytes.fromhex("00000000 0080")),  # needs a sign byte
        (Decimal("0"), bytes.fromhex("00000000 00")),
        (Decimal("1E+3"), bytes.fromhex("fffffffd 01")),  # negative scale
    ],
)
def test_known_encodings(value: Decimal, blob: bytes) -> None:
    assert decimal_to_blob(value) == blob
    assert blob_to_decimal(blob) == value


def test_round_trip_keeps_value_and_scale() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        value = Decimal(rng.randint(-(10**15), 10**15)).scaleb(-rng.randint(0, 6))
        back = blob_to_decimal(decimal_to_blob(value))
        assert back == value
        assert str(back) == str(value)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity")])
def test_non_finite_values_are_refused(value: Decimal) -> None:
    with pytest.raises(ValueError, match="cannot be stored"):
        decimal_to_blob(value)


def test_short_blob_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 5 bytes"):
        blob_to_decimal(b"\x00\x00")


@pytest.mark.parametrize(
    "text",
    [
        "12345678901234567890.123456789012345678",  # 38 digits: the most a price may have
        "-99999999999999999999.999999999999999999",
        "0.000000000000000001",
        "929.6972748780319",
    ],
)
def test_every_digit_of_a_38_digit_decimal_survives(text: str) -> None:
    value = Decimal(text)
    back = blob_to_decimal(decimal_to_blob(value))
    assert str(back) == str(value)
    assert back.as_tuple() == value.as_tuple()
