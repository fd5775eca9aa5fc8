"""Read what waits on an emulator subscription right now, without long polls.

The product's consumers use long polls (``ecom_shared.pubsub.client``); tools that must know
"what is there now" (tests, the demo's summary) ask the emulator with ``returnImmediately``
instead, so no abandoned pull leases messages away. Emulator only: no credentials are sent.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import aiohttp

_EMPTY_PULLS_FOR_DONE = 2  # an immediate pull may come back empty once while messages wait


@dataclass(frozen=True, slots=True)
class Pulled:
    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: str = ""
    """As Pub/Sub gave it (RFC 3339, UTC); empty if it gave none."""


async def drain_now(
    host_port: str, project: str, subscription: str, *, ack: bool = True, limit: int = 1_000_000
) -> list[Pulled]:
    """Every message the subscription holds now (up to ``limit``); acked unless ``ack`` is False.

    Messages not acked stay leased until their ack deadline, then return to the subscription.
    """
    base = f"http://{host_port}/v1/projects/{project}/subscriptions/{subscription}"
    got: list[Pulled] = []
    empty_in_a_row = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        while empty_in_a_row < _EMPTY_PULLS_FOR_DONE and len(got) < limit:
            body = {"maxMessages": 1000, "returnImmediately": True}
            async with session.post(f"{base}:pull", json=body) as response:
                response.raise_for_status()
                received = (await response.json()).get("receivedMessages", [])
            if not received:
                empty_in_a_row += 1
                continue
            empty_in_a_row = 0
            got.extend(_pulled(item["message"]) for item in received)
            if ack:
                ack_ids = [item["ackId"] for item in received]
                async with session.post(
                    f"{base}:acknowledge", json={"ackIds": ack_ids}
                ) as response:
                    response.raise_for_status()
    return got


def _pulled(message: dict[str, object]) -> Pulled:
    data = message.get("data")
    attributes = message.get("attributes")
    return Pulled(
        message_id=str(message["messageId"]),
        data=base64.b64decode(data) if isinstance(data, str) else b"",
        attributes=dict(attributes) if isinstance(attributes, dict) else {},
        publish_time=str(message.get("publishTime") or ""),
    )
