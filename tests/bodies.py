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


_APPS_ORDER = (
    b'{"order_id": 17, "customer_id": 343, "item": "Laptop", "quantity": 3, '
    b'"price": 929.6972748780319, "shipping_address": "123 Main St, City A, Country", '
    b'"order_status": "Shipped", "creation_date": "2023-09-01"}'
)

POISON: dict[str, tuple[bytes, str]] = {
    "deep_arrays": (b"[" * 3000, "invalid_json"),
    "brackets_60kb": (b"[" * 60_000, "invalid_json"),
    "deep_objects": (b'{"order_id": 17, "a": ' * 2000, "invalid_json"),
    "number_of_5000_digits": (b'{"order_id": ' + b"9" * 5000 + b"}", "invalid_json"),
    "id_of_4000_digits": (_APPS_ORDER.replace(b"17", b"9" * 4000, 1), "invalid_value"),
    "body_1e999999": (b"1e999999", "invalid_json"),
    "price_1e999999": (_APPS_ORDER.replace(b"929.6972748780319", b"1e999999"), "invalid_value"),
}
"""Bodies that once crashed consumers or could: each with the reason it is refused for (as an
order). All are under the 64 KiB body limit, so each reaches the JSON parser."""
