"""The dependency probe asks what the pipeline needs: enough replicas for its consistency.

A keyspace with three replicas on the one test node is a cluster with two of three replicas
down, as far as ``LOCAL_QUORUM`` goes: any node still answers ``system.local``, but no write
can succeed. The consumers' gate must then stay closed, so the probe must fail too; otherwise
the gate reopens, pulls again and burns delivery attempts until healthy messages reach the
dead-letter topic.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ecom_shared.errors import StoreUnavailable
from ecom_shared.events import Order, parse_event
from ecom_shared.policy import decide
from ecom_shared.pubsub.provision import provision
from ecom_shared.runtime.resources import open_resources
from ecom_shared.settings import ServiceSettings
from tests.infra import InfraUnderTest, node_answers

ORDER = parse_event(
    Order,
    b'{"order_id": 7, "customer_id": 1, "item": "lamp", "quantity": 1, "price": 9.90, '
    b'"shipping_address": "1 Main St", "order_status": "Pending", "creation_date": "2026-01-01"}',
    None,
)


def replicated(infra: InfraUnderTest, factor: int) -> ServiceSettings:
    base = infra.settings()
    replication = f"{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}"
    cassandra = base.cassandra.model_copy(update={"replication": replication})
    return base.model_copy(update={"cassandra": cassandra})


# What the driver raises when too few replicas are up: the node's Unavailable, or, once the
# driver's retry policy has tried the next host and found none, "no hosts available".
TOO_FEW_REPLICAS = {"CassErrorServerUnavailable", "CassErrorLibNoHostsAvailable"}


async def test_probe_fails_while_a_quorum_of_replicas_is_missing(infra: InfraUnderTest) -> None:
    settings = replicated(infra, 3)  # one node: one replica of three answers
    await provision(settings, pubsub=False)
    async with open_resources(settings) as resources:
        await node_answers(resources.cql)  # any live node answers a query of system.local
        with pytest.raises(StoreUnavailable) as written:
            await resources.orders.upsert_order(ORDER, 1_000_000, datetime.now(UTC))
        with pytest.raises(StoreUnavailable) as probed:
            await resources.probe()
    for refused in (written.value, probed.value):
        assert refused.driver_error in TOO_FEW_REPLICAS
        assert decide(refused).dependency == "cassandra"


async def test_probe_passes_when_the_replicas_answer(infra: InfraUnderTest) -> None:
    settings = replicated(infra, 1)
    await provision(settings, pubsub=False)
    async with open_resources(settings) as resources:
        await resources.probe()
        await resources.orders.upsert_order(ORDER, 1_000_000, datetime.now(UTC))
        assert await resources.orders.order_exists(ORDER.order_id)
