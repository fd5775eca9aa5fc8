"""Looking at the emulator's subscriptions from a test: is anything waiting, and what reached
the dead-letter topic. Emulator only (plain REST, no credentials)."""

from __future__ import annotations

from collections import Counter

import aiohttp

from ecom_devtools.local.drain import Pulled, drain_now
from ecom_shared.settings import PubSubSettings
from ecom_verifier.manifest import read_records
from tests.faults.report import DeadLetterCheck

_PEEK = 100


async def waiting(host_port: str, project: str, subscription: str) -> int:
    """How many messages an immediate pull finds (at most 100); they are handed straight back
    (ack deadline 0), so the consumers get them at once. Counts one delivery attempt."""
    base = f"http://{host_port}/v1/projects/{project}/subscriptions/{subscription}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        body = {"maxMessages": _PEEK, "returnImmediately": True}
        async with session.post(f"{base}:pull", json=body) as reply:
            reply.raise_for_status()
            received = (await reply.json()).get("receivedMessages", [])
        if received:
            back = {"ackIds": [r["ackId"] for r in received], "ackDeadlineSeconds": 0}
            async with session.post(f"{base}:modifyAckDeadline", json=back) as reply:
                reply.raise_for_status()
    return len(received)


def expected_dead_letters(manifest_lines: list[str]) -> Counter[str]:
    """``topic/reason`` of every malformed message the manifest lists."""
    records = read_records(manifest_lines)
    return Counter(f"{r['topic']}/{r['reason']}" for r in records if r["kind"] == "malformed")


def dead_letter_key(message: Pulled, pubsub: PubSubSettings) -> str:
    """``topic/reason`` of a dead-lettered message; a message the subscription's dead-letter
    policy forwarded (no ``error_reason``) is keyed ``<subscription>/policy``."""
    topics = {pubsub.orders_subscription: "orders", pubsub.payments_subscription: "payments"}
    attrs = message.attributes
    source = attrs.get("source_subscription") or attrs.get(
        "CloudPubSubDeadLetterSourceSubscription", "?"
    )
    source = source.rsplit("/", 1)[-1]
    reason = attrs.get("error_reason", "policy")
    return f"{topics.get(source, source)}/{reason}"


def source_id(message: Pulled) -> str:
    """The id of the message that was dead-lettered (the same for every copy of it)."""
    return message.attributes.get("source_message_id") or message.message_id


def check_dead_letters(
    messages: list[Pulled], expected: Counter[str], pubsub: PubSubSettings
) -> DeadLetterCheck:
    """Count each source message once; later copies of it are counted in ``copies``."""
    seen: set[str] = set()
    got: Counter[str] = Counter()
    copies = 0
    for message in messages:
        key = source_id(message)
        if key in seen:
            copies += 1
            continue
        seen.add(key)
        got[dead_letter_key(message, pubsub)] += 1
    return DeadLetterCheck(expected=dict(expected), got=dict(got), copies=copies)


async def take_dead_letters(host_port: str, pubsub: PubSubSettings) -> list[Pulled]:
    """Everything on the dead-letter subscription now, acked (so each call sees new ones)."""
    return await drain_now(host_port, pubsub.project_id, pubsub.dead_letter_subscription)
