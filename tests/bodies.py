"""Message bodies in the apps' format, built from event models (for tests that make events in
Python and need the bytes an app would publish for them).

Prices are written as JSON numbers with the decimal's own digits (pydantic's JSON dump writes a
``Decimal`` as a string, which the product refuses as the apps never send one), a date-only
``creation_date`` as a date, and ``updated_at`` only when the event has one.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

from ecom_shared.events import Order, Payment


def _value(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)  # digits as they are: 19.90, 1.5E+3 are JSON numbers too
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    return json.dumps(value, ensure_ascii=False)


def body_of(event: Order | Payment) -> bytes:
    fields = event.model_dump()
    if fields.get("updated_at", "") is None:
        del fields["updated_at"]
    pairs = (f"{json.dumps(name)}: {_value(value)}" for name, value in fields.items())
    return ("{" + ", ".join(pairs) + "}").encode()
