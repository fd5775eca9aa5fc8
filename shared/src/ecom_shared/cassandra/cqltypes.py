"""CQL values that acsylla 1.2.0 cannot bind or read correctly, encoded by hand.

acsylla writes a ``decimal`` as the ASCII digits of its unscaled value instead of a varint
(``Decimal("476.79")`` is stored as 574117368440.89, as ``CAST(price AS text)`` shows),
and reads it back with the same mistake, so the error is invisible to acsylla itself and
visible to every other client. So money is written through ``blobAsDecimal(?)`` with the
serialized form built here, and read back through ``decimalAsBlob(...)``.

Cassandra's ``decimal`` on the wire: a 4-byte big-endian signed scale, then the unscaled value
as a big-endian two's-complement varint.
"""

from __future__ import annotations

from decimal import MAX_PREC, Context, Decimal

_EXACT = Context(prec=MAX_PREC)
"""Arithmetic that never rounds: the default context keeps 28 significant digits, and a price
may have 38."""


def decimal_to_blob(value: Decimal) -> bytes:
    if not value.is_finite():
        raise ValueError(f"{value} cannot be stored as a CQL decimal")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite values have an integer exponent
    unscaled = int(value.scaleb(-exponent, _EXACT))  # the digits, with the sign, as an integer
    length = (unscaled.bit_length() + 8) // 8  # one bit more for the sign
    return (-exponent).to_bytes(4, "big", signed=True) + unscaled.to_bytes(
        length, "big", signed=True
    )


def blob_to_decimal(blob: bytes) -> Decimal:
    if len(blob) < 5:  # noqa: PLR2004 - scale (4 bytes) and at least one varint byte
        raise ValueError("a CQL decimal has at least 5 bytes")
    scale = int.from_bytes(blob[:4], "big", signed=True)
    unscaled = int.from_bytes(blob[4:], "big", signed=True)
    return Decimal(unscaled).scaleb(-scale, _EXACT)
