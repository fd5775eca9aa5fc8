"""A stream in exactly the apps' format, and its publication the way the apps publish it.
Every message is recorded in publish order, so the tables it must leave can be worked out
from the messages alone (:mod:`tests.apps_tables`); nothing here uses product code.

Modelled on the original course project's two producer scripts: one JSON body per
message and no attributes; order ids cycle 1..N, each cycle sending every order again with
fresh random fields (there is no ``updated_at``: the version published last must win);
``price`` is ``json.dumps`` of ``random.uniform(100, 1500)``; statuses and methods are
capitalised; ``creation_date`` is a date; ``payment_id = 1000 + order_id``; for order ids 1
to 80 the payment hour is the order id, as in the original, so from id 24 on it names no
instant (``2023-09-01T24:01:30Z``). On top, as the issue asks: payments published before
their order, exact duplicates, a second payment for some orders (later, or at the same
millisecond), payments whose order never comes, unknown fields, non-ASCII text (escaped or
raw UTF-8), 5,000-character addresses, prices with trailing zeros or 17 digits no float
holds, more invalid hours (up to 500, as the original sends), and a few spellings outside the
original lists (text is not checked against a closed list).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any, Final, Literal

import aiohttp

Topic = Literal["orders", "payments"]

ORDER_STATUSES: Final = ("Shipped", "Pending", "Delivered", "Cancelled")
PAYMENT_METHODS: Final = ("Credit Card", "Debit Card", "PayPal", "Google Pay", "Apple Pay")
ITEMS: Final = ("Laptop", "Phone", "Headphones", "Tablet", "Smartwatch", "Camera")
ADDRESSES: Final = (
    "123 Main St, City A, Country",
    "456 Elm St, City B, Country",
    "789 Oak St, City C, Country",
)
NON_ASCII_ITEMS: Final = ("Café Crème Machine", "Schuhlöffel", "東京タワー Model", "Écharpe 🧣")
NON_ASCII_ADDRESSES: Final = (
    "12 Rue de l'Église, Genève, Suisse",
    "Königstraße 5, 80331 München",
    "東京都千代田区千代田1-1",
    "Calle del Señor 7, Cádiz 🏖",
)
NEW_STATUSES: Final = ("Returned", "On Hold")
NEW_METHODS: Final = ("Klarna", "Carte Bancaire")
UNKNOWN_FIELDS: Final[tuple[tuple[str, object], ...]] = (
    ("coupon_code", "WELCOME10"),
    ("gift_message", "Joyeux anniversaire, Zoë !"),
    ("tags", ["gift", "express"]),
    ("device", {"os": "iOS", "app_version": "5.2.0"}),
    ("loyalty_points", 120),
    ("referrer", None),
    ("schema_version", 2),
)
FIRST_DAY: Final = date(2023, 9, 1)
ORIGINAL_IDS: Final = 80  # the original sent order ids 1..80, each payment's hour its order id
CHUNK: Final = 250  # messages per publish request (Pub/Sub takes up to 1,000)
VERSION_GAP: Final = 0.003
"""Seconds between a publish request carrying orders and the next request: versions of one
order are never in one request, so they get publish times at least 2 ms apart."""

_UNPAID = 0.07  # share of orders that never get a payment
_PAYMENTS_FIRST = 0.2  # share of paid orders whose payments go out before the order
_SECOND_PAYMENT = 0.05
_SAME_MILLISECOND = 0.25  # of second payments: the same time, told apart by payment_id % 1000
_INVALID_HOUR = 0.02  # of payments for ids above ORIGINAL_IDS (those up to it follow the rule)
_DUPLICATES = 0.05
_UNKNOWN = 0.01
_NON_ASCII = 0.05
_LONG_ADDRESS = 0.002
_NEW_SPELLING = 0.01


@dataclass(frozen=True, slots=True)
class Number:
    """A JSON number written with exactly these digits."""

    text: str


@dataclass(frozen=True, slots=True)
class Sent:
    """One published message: its body and the body parsed (numbers with a fraction as the
    ``Decimal`` of their digits)."""

    topic: Topic
    body: bytes
    value: dict[str, Any]
    price_text: str | None = None
    unknown: tuple[str, ...] = ()
    duplicate: bool = False

    @property
    def order_id(self) -> int:
        return int(self.value["order_id"])

    @property
    def non_ascii(self) -> bool:
        return any(isinstance(v, str) and not v.isascii() for v in self.value.values())


def dump(fields: Sequence[tuple[str, object]], *, ascii_only: bool = True) -> bytes:
    """A JSON object as ``json.dumps`` writes one; a :class:`Number` keeps its digits."""
    parts = []
    for key, value in fields:
        if isinstance(value, Number):
            text = value.text
        else:
            text = json.dumps(value, ensure_ascii=ascii_only)
        parts.append(f"{json.dumps(key)}: {text}")
    return ("{" + ", ".join(parts) + "}").encode("utf-8")


def parsed(body: bytes) -> dict[str, Any]:
    value = json.loads(body, parse_float=Decimal)
    assert isinstance(value, dict)
    return value


class _Apps:
    """The two producers' fields, drawn from one seeded generator."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng

    def order(self, order_id: int, created: date) -> Sent:
        r = self.rng
        item, address = r.choice(ITEMS), r.choice(ADDRESSES)
        if r.random() < _NON_ASCII:
            item, address = r.choice(NON_ASCII_ITEMS), r.choice(NON_ASCII_ADDRESSES)
        if r.random() < _LONG_ADDRESS:
            address = _long_address(r)
        status = r.choice(NEW_STATUSES if r.random() < _NEW_SPELLING else ORDER_STATUSES)
        price = self._price()
        fields: list[tuple[str, object]] = [
            ("order_id", order_id),
            ("customer_id", r.randint(100, 1000)),
            ("item", item),
            ("quantity", r.randint(1, 10)),
            ("price", price),
            ("shipping_address", address),
            ("order_status", status),
            ("creation_date", created.isoformat()),
        ]
        return self._sent("orders", fields, price.text)

    def _price(self) -> Number:
        r = self.rng
        roll = r.random()
        if roll < 0.1:  # money with two decimals, trailing zeros kept: "1234.50"
            return Number(f"{r.uniform(100, 1500):.2f}")
        if roll < 0.2:  # 17 significant digits, mostly more than a float holds
            whole = r.randint(100, 1499)
            places = 17 - len(str(whole))
            return Number(f"{whole}.{r.randrange(10**places):0{places}d}")
        return Number(json.dumps(r.uniform(100, 1500)))  # the original producer's price

    def payments_for(self, order_id: int) -> list[Sent]:
        """The order's payment (``1000 + order_id``), and for some a second one, later or at
        the same millisecond with another ``payment_id % 1000``, in either publish order."""
        r = self.rng
        minute, second = r.randrange(50), r.randrange(60)
        if order_id <= ORIGINAL_IDS:
            hour, minute, second = order_id, 1, 30
        elif r.random() < _INVALID_HOUR:
            hour = r.randint(24, 500)
        else:
            hour = r.randrange(24)
        payments = [self.payment(1000 + order_id, order_id, _when(hour, minute, second))]
        if hour < 24 and r.random() < _SECOND_PAYMENT:
            if r.random() >= _SAME_MILLISECOND:
                minute, second = r.randint(minute + 1, 59), r.randrange(60)
            tail = r.choice([k for k in range(1, 1000) if k != order_id % 1000])
            second_id = 1_000_000 + order_id * 1000 + tail
            payments.append(self.payment(second_id, order_id, _when(hour, minute, second)))
            r.shuffle(payments)
        return payments

    def payment(self, payment_id: int, order_id: int, when: str) -> Sent:
        r = self.rng
        method = r.choice(NEW_METHODS if r.random() < _NEW_SPELLING else PAYMENT_METHODS)
        fields: list[tuple[str, object]] = [
            ("payment_id", payment_id),
            ("order_id", order_id),
            ("payment_method", method),
            ("card_last_four", f"{r.randrange(10000):04d}"),
            ("payment_status", "Completed"),
            ("payment_datetime", when),
        ]
        return self._sent("payments", fields)

    def _sent(
        self, topic: Topic, fields: list[tuple[str, object]], price: str | None = None
    ) -> Sent:
        r = self.rng
        unknown: list[str] = []
        if r.random() < _UNKNOWN:
            for name, value in r.sample(UNKNOWN_FIELDS, r.randint(1, 3)):
                fields.insert(r.randint(1, len(fields)), (name, value))
                unknown.append(name)
        body = dump(fields, ascii_only=r.random() < 0.5)
        return Sent(topic, body, parsed(body), price, tuple(unknown))


def _when(hour: int, minute: int, second: int) -> str:
    return f"2023-09-01T{hour:02d}:{minute:02d}:{second:02d}Z"


def _long_address(r: Random) -> str:
    words = ("Rue", "Straße", "Avenue", "Lane", "Ñ", "building", "floor", str(r.randint(1, 99)))
    text = ""
    while len(text) < 5000:
        text += r.choice(words) + " "
    return text[:5000]


@dataclass(frozen=True)
class AppsStream:
    """Publish requests in publish order: each holds one topic's messages, and never two
    versions of one order."""

    requests: tuple[tuple[Sent, ...], ...]
    payments_first: int
    orphan_orders: int

    def __post_init__(self) -> None:
        for request in self.requests:
            assert 0 < len(request) <= 1000
            assert len({m.topic for m in request}) == 1
            if request[0].topic == "orders":
                assert len({m.order_id for m in request}) == len(request)

    def messages(self, topic: Topic | None = None) -> Iterator[Sent]:
        for request in self.requests:
            for message in request:
                if topic is None or message.topic == topic:
                    yield message

    def counts(self) -> dict[str, int]:
        orders = list(self.messages("orders"))
        payments = list(self.messages("payments"))
        order_ids = {m.order_id for m in orders}
        return {
            "orders": len(order_ids),
            "order versions": sum(not m.duplicate for m in orders),
            "order messages": len(orders),
            "payments": sum(not m.duplicate for m in payments),
            "payment messages": len(payments),
            "payments published before their order": self.payments_first,
            "payments whose order never comes": sum(
                not m.duplicate and m.order_id not in order_ids for m in payments
            ),
            "duplicates": sum(m.duplicate for m in self.messages()),
            "invalid hours": sum(not is_instant(m.value["payment_datetime"]) for m in payments),
            "messages with unknown fields": sum(bool(m.unknown) for m in self.messages()),
            "messages with non-ASCII text": sum(m.non_ascii for m in self.messages()),
            "publish requests": len(self.requests),
        }


def apps_stream(
    orders: int = 2000, *, cycles: int = 3, orphans: int = 40, seed: int = 13
) -> AppsStream:
    """``cycles`` versions of orders 1..``orders``, their payments, and payments for
    ``orphans`` order ids that never get an order."""
    r = Random(seed)
    apps = _Apps(r)
    ids = range(1, orders + 1)
    created = {i: FIRST_DAY - timedelta(days=r.randrange(90)) for i in ids}
    paid = [i for i in ids if r.random() >= _UNPAID]
    orphan_ids = range(orders + 1, orders + orphans + 1)
    payments = {i: apps.payments_for(i) for i in [*paid, *orphan_ids]}
    first = set(r.sample(paid, int(len(paid) * _PAYMENTS_FIRST)))
    requests = _chunks([p for i in sorted(first) for p in payments[i]])
    for cycle in range(cycles):
        versions = [apps.order(i, created[i]) for i in ids]
        for chunk in _chunks(versions):
            requests.append(chunk)
            if cycle == 0:  # the payment producer runs beside: payments follow their orders
                after = [o.order_id for o in chunk if o.order_id not in first]
                requests += _chunks([p for i in after for p in payments.get(i, [])])
        requests += _chunks(_duplicates(r, versions))
        if cycle == 0:
            requests += _chunks([p for i in orphan_ids for p in payments[i]])
    requests += _chunks(_duplicates(r, [p for ps in payments.values() for p in ps]))
    first_count = sum(len(payments[i]) for i in first)
    return AppsStream(tuple(requests), first_count, orphans)


def _chunks(messages: Sequence[Sent]) -> list[tuple[Sent, ...]]:
    return [tuple(messages[i : i + CHUNK]) for i in range(0, len(messages), CHUNK)]


def _duplicates(r: Random, messages: Sequence[Sent]) -> list[Sent]:
    """Exact copies (the same bytes) of a sample, each published once more."""
    return [
        replace(m, duplicate=True) for m in r.sample(messages, int(len(messages) * _DUPLICATES))
    ]


async def publish_stream(
    host_port: str, project: str, topics: Mapping[Topic, str], stream: AppsStream
) -> None:
    """Publish every request in order, each awaited, with bodies only (no attributes), to the
    emulator's REST API."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for request in stream.requests:
            topic = topics[request[0].topic]
            url = f"http://{host_port}/v1/projects/{project}/topics/{topic}:publish"
            wire = [{"data": base64.b64encode(m.body).decode("ascii")} for m in request]
            async with session.post(url, json={"messages": wire}) as reply:
                reply.raise_for_status()
                ids = (await reply.json())["messageIds"]
            assert len(ids) == len(request), f"{len(ids)} ids for {len(request)} messages"
            if request[0].topic == "orders":
                await asyncio.sleep(VERSION_GAP)  # publish times of two versions must differ


def is_instant(text: str) -> bool:
    """Whether ``text`` names a real instant (``2023-09-01T24:01:30Z`` does not)."""
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False
