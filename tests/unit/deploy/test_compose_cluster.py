"""``compose.cluster.yaml`` without an engine: three nodes that can form one ring, and services
that use all of them with three replicas at ``LOCAL_QUORUM``.

``tests/unit/deploy/test_compose.py`` checks it against the Compose schema and the services'
settings like the other files; ``tests/docker/test_cluster.py`` runs it and kills nodes.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any

import pytest

from ecom_shared.cassandra.replication import parse_replication
from ecom_shared.settings import ServiceSettings
from tests.compose_files import (
    BASE_FILE,
    CLUSTER_FILE,
    cassandra_nodes,
    environment,
    interpolate,
    merged,
)

DATA_DIR = "/var/lib/cassandra"
HEALTHY = {"condition": "service_healthy"}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ECOM_", "CASSANDRA_")):
            monkeypatch.delenv(name)


def cluster() -> dict[str, Any]:
    return merged(BASE_FILE, CLUSTER_FILE)


def node_env(service: dict[str, Any]) -> dict[str, str]:
    env = environment(service, {})
    assert None not in env.values(), "every node setting has a value"
    return {name: str(value) for name, value in env.items()}


def healthy_dependencies(service: dict[str, Any], among: set[str]) -> set[str]:
    depends = service.get("depends_on", {})
    return {
        name for name in among if depends.get(name, {}).get("condition") == HEALTHY["condition"]
    }


def test_three_nodes_of_one_cluster_and_data_centre() -> None:
    nodes = cassandra_nodes(cluster())
    assert len(nodes) == 3
    envs = {name: node_env(service) for name, service in nodes.items()}
    for key in ("CASSANDRA_CLUSTER_NAME", "CASSANDRA_DC", "CASSANDRA_SEEDS", "JVM_EXTRA_OPTS"):
        assert len({env[key] for env in envs.values()}) == 1, key
    for name, env in envs.items():
        assert env["CASSANDRA_ENDPOINT_SNITCH"] == "GossipingPropertyFileSnitch", name
        seeds = env["CASSANDRA_SEEDS"].split(",")
        assert set(seeds) <= set(nodes), (name, seeds)
        assert len(seeds) >= 2, "one seed down must not keep a restarted node out"


def test_nodes_join_one_at_a_time() -> None:
    """Cassandra refuses two nodes bootstrapping at once: each node but the first waits until
    the one before it answers CQL, and the chain covers every node."""
    document = cluster()
    nodes = cassandra_nodes(document)
    waits = {name: healthy_dependencies(service, set(nodes)) for name, service in nodes.items()}
    first = [name for name, before in waits.items() if not before]
    assert first == ["cassandra"]
    order = first
    while len(order) < len(nodes):
        following = [name for name, before in waits.items() if before == {order[-1]}]
        assert len(following) == 1, waits
        order += following
    for name in nodes:
        assert nodes[name]["healthcheck"]["test"][:2] == ["CMD", "cqlsh"], name


def test_every_node_keeps_its_own_data() -> None:
    document = cluster()
    volumes = {}
    for name, service in cassandra_nodes(document).items():
        mounted = [v.split(":")[0] for v in service["volumes"] if v.endswith(f":{DATA_DIR}")]
        assert len(mounted) == 1, name
        volumes[name] = mounted[0]
    assert len(set(volumes.values())) == len(volumes), volumes
    assert set(volumes.values()) <= set(document["volumes"])


def test_a_restarted_node_keeps_its_address() -> None:
    """Docker gives a restarted container any free address; a node that comes back with the
    address of another node that is down is refused by the cluster. So each node has a fixed
    one, outside the range the other containers get theirs from."""
    document = cluster()
    (config,) = document["networks"]["default"]["ipam"]["config"]
    subnet = ipaddress.ip_network(interpolate(config["subnet"], {}))
    dynamic = ipaddress.ip_network(interpolate(config["ip_range"], {}))
    assert dynamic.subnet_of(subnet)  # type: ignore[arg-type]
    addresses = set()
    for name, service in cassandra_nodes(document).items():
        fixed = service["networks"]["default"]["ipv4_address"]
        address = ipaddress.ip_address(interpolate(fixed, {}))
        assert address in subnet, name
        assert address not in dynamic, name
        addresses.add(address)
    assert len(addresses) == len(cassandra_nodes(document))
    moved = interpolate(config["subnet"], {"CLUSTER_SUBNET_PREFIX": "10.9.8"})
    assert moved == "10.9.8.0/24"


def megabytes(size: str) -> int:
    match = re.fullmatch(r"(\d+)([MG])", size)
    assert match, size
    return int(match.group(1)) * (1024 if match.group(2) == "G" else 1)


def test_three_heaps_fit_a_laptop_and_a_stop_waits_for_the_node() -> None:
    nodes = cassandra_nodes(cluster())
    heaps = [megabytes(node_env(service)["MAX_HEAP_SIZE"]) for service in nodes.values()]
    assert sum(heaps) <= 3 * 1024, heaps
    for name, service in nodes.items():
        grace = re.fullmatch(r"(\d+)s", service["stop_grace_period"])
        assert grace, name
        assert int(grace.group(1)) >= 60, name


def test_the_schema_waits_for_every_node() -> None:
    document = cluster()
    nodes = set(cassandra_nodes(document))
    waits = healthy_dependencies(document["services"]["cassandra-init"], nodes)
    assert "cassandra-3" in waits  # the last of the chain: every node has joined


def test_services_use_every_node_with_three_replicas_at_local_quorum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = cluster()
    nodes = cassandra_nodes(document)
    dc = node_env(nodes["cassandra"])["CASSANDRA_DC"]
    for name, service in document["services"].items():
        env = environment(service, {})
        if "ECOM_CASSANDRA__CONTACT_POINTS" not in env:
            continue
        with monkeypatch.context() as patch:
            for variable, value in env.items():
                if variable.startswith("ECOM_CASSANDRA__") and value is not None:
                    patch.setenv(variable, value)
            settings = ServiceSettings().cassandra
        assert sorted(settings.contact_points) == sorted(nodes), name
        assert settings.local_dc == dc, name
        replication = parse_replication(settings.replication)
        assert replication.strategy == "NetworkTopologyStrategy", name
        assert replication.factors == ((dc, len(nodes)),), name
        assert settings.consistency == "LOCAL_QUORUM", name
