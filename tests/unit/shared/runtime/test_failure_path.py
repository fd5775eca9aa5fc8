"""The failure path never raises: whatever a message's bytes and attributes, a message that
cannot be parsed is dead-lettered with its reason and acked, and the loop goes on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ecom_shared.errors import InvalidMessage
from ecom_shared.events import Order, Payment, order_id_hint, parse_event
from ecom_shared.pubsub.client import ReceivedMessage
from tests.bodies import POISON
from tests.fakes import received
from tests.polling import eventually
from tests.unit.shared.runtime.test_consumer import Harness
from tests.unit.shared.test_events import APPS_ORDER, ORDER


async def parse_orders(message: ReceivedMessage) -> None:
    """The order consumer's first step, and nothing after it."""
    parse_event(Order, message.data, message.attributes)


async def test_poison_bodies_are_dead_lettered_and_acked_and_the_loop_goes_on() -> None:
    poison = {name: received(data) for name, (data, _) in POISON.items()}
    h = Harness(parse_orders, list(poison.values()))
    async with h.running() as task:
        await eventually(lambda: len(h.sub.acked) == len(poison))
        good = received(APPS_ORDER)
        h.sub.queue.append(good)
        await eventually(lambda: good.ack_id in h.sub.acked)
        assert not task.done()
    sent = {m.attributes["source_message_id"]: m for m in h.publisher.on("dead-letter")}
    for name, message in poison.items():
        dead = sent[message.message_id]
        assert dead.data == message.data, name  # byte for byte
        assert dead.attributes["error_reason"] == POISON[name][1], name
    assert h.consumer.stats.dead_lettered == len(poison)
    assert h.consumer.stats.retried == 0


async def test_attributes_that_are_not_utf8_text_still_make_a_dead_letter() -> None:
    """A lone surrogate cannot be encoded as UTF-8: the dead letter's attributes escape it."""
    bad = received(b"[" * 3000, {"event_type": "order\udc80", "k\ud800": "v"})
    h = Harness(parse_orders, [bad])
    async with h.running():
        await eventually(lambda: h.sub.acked == [bad.ack_id])
    [dead] = h.publisher.on("dead-letter")
    assert dead.attributes["error_reason"] == "wrong_event_type"
    assert "\\udc80" in dead.attributes["error_detail"]
    assert "\\ud800" in dead.attributes["original_attributes"]


# Bodies: arbitrary bytes, JSON of any shape (numbers of any size, any keys), the apps' order
# with one field of any JSON value, JSON cut short, deep nesting; attributes: any text, lone
# surrogates included.
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_FIELD_REPLACED = st.builds(
    lambda name, value: json.dumps({**ORDER, name: value}, ensure_ascii=False).encode(
        "utf-8",
        "surrogatepass",  # a lone surrogate becomes bytes that are not UTF-8
    ),
    st.sampled_from([*ORDER, "updated_at"]),
    _JSON,
)
_BODIES = st.one_of(
    st.binary(max_size=300),
    _JSON.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    _FIELD_REPLACED,
    st.builds(lambda v, cut: json.dumps(v).encode()[:cut], _JSON, st.integers(0, 50)),
    st.builds(
        lambda s, n: s * n,
        st.sampled_from([b"[", b'{"a":', b"9", b'{"order_id":']),
        st.integers(1, 5000),
    ),
    st.sampled_from([data for data, _ in POISON.values()]),
    st.none(),
)
_ATTRIBUTES = st.dictionaries(_TEXT, _TEXT, max_size=5)


@settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=_BODIES, attributes=_ATTRIBUTES)
@example(data=b"[" * 3000, attributes={})
@example(data=b'{"order_id": 1e999999}', attributes={"event_type": "\ud800"})
def test_no_bytes_and_no_attributes_make_the_failure_path_raise(
    data: bytes | None, attributes: dict[str, str]
) -> None:
    as_order = _refusal(lambda: parse_event(Order, data, attributes))
    as_payment = _refusal(lambda: parse_event(Payment, data, attributes))
    for refusal in (as_order, as_payment):
        assert refusal is None or all(refusal)  # a reason and a detail
    hint = order_id_hint(data)
    assert hint is None or 0 < hint < 2**63
    dead_letters = 0 if as_order is None else 1
    asyncio.run(_through_the_loop(received(data, attributes), dead_letters=dead_letters))


def _refusal(parse: Callable[[], object]) -> tuple[str, str] | None:
    try:
        parse()
    except InvalidMessage as invalid:  # the one error parsing may raise
        return invalid.reason, invalid.detail
    return None


async def _through_the_loop(message: ReceivedMessage, *, dead_letters: int) -> None:
    """The consumer loop acks the message, stored or dead-lettered; it never retries it."""
    h = Harness(parse_orders, [message])
    async with h.running() as task:
        await eventually(lambda: h.sub.acked == [message.ack_id] or task.done(), timeout=2)
    assert h.consumer.stats.retried == 0, h.consumer.stats.reasons
    assert len(h.publisher.on("dead-letter")) == dead_letters
