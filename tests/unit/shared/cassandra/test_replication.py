"""The replication setting: a CQL map, parsed strictly and rendered again from its parts."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from ecom_shared.cassandra.replication import parse_replication
from ecom_shared.cassandra.schema import schema_statements
from ecom_shared.settings import CassandraSettings

NTS = "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"


@pytest.mark.parametrize(
    ("given", "rendered"),
    [
        (
            "{'class': 'SimpleStrategy', 'replication_factor': 1}",
            "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        ),
        (" { 'class':'NetworkTopologyStrategy','dc1':'3', 'dc2' : 2 } ", NTS),
        (
            "{'class': 'org.apache.cassandra.locator.NetworkTopologyStrategy', 'us-east': 3}",
            "{'class': 'NetworkTopologyStrategy', 'us-east': 3}",
        ),
        (
            "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}",
            "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}",
        ),
    ],
)
def test_valid_maps_are_rendered_canonically(given: str, rendered: str) -> None:
    assert parse_replication(given).cql() == rendered
    assert CassandraSettings(replication=given).replication == rendered


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("{'class': 'LocalStrategy'}", "SimpleStrategy or NetworkTopologyStrategy"),
        ("{'replication_factor': 3}", "SimpleStrategy or NetworkTopologyStrategy"),
        ("{'class': 'SimpleStrategy', 'dc1': 3}", "exactly one entry"),
        ("{'class': 'SimpleStrategy'}", "exactly one entry"),
        ("{'class': 'NetworkTopologyStrategy'}", "a factor per data centre"),
        ("{'class': 'NetworkTopologyStrategy', 'dc1': 0}", ">= 1"),
        ("{'class': 'NetworkTopologyStrategy', 'dc1': '3/1'}", "is not 'name': value"),
        ("{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc1': 2}", "twice"),
        ("'class': 'SimpleStrategy', 'replication_factor': 1", "in braces"),
        (
            "{'class': 'SimpleStrategy', 'replication_factor': 1} AND durable_writes = false",
            "in braces",
        ),
        ("{'class': 'SimpleStrategy', 'replication_factor': 1}; DROP TABLE x; {}", "is not"),
    ],
)
def test_bad_maps_are_refused_with_a_reason(given: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        parse_replication(given)
    with pytest.raises(ValidationError, match="replication"):
        CassandraSettings(replication=given)


def test_create_keyspace_uses_the_rendered_map() -> None:
    settings = CassandraSettings(replication=" {'class':'NetworkTopologyStrategy','dc1':3} ")
    create_keyspace = schema_statements(settings)[0]
    assert create_keyspace == (
        "CREATE KEYSPACE IF NOT EXISTS ecom_store WITH replication = "
        "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
    )


def test_local_dc_must_hold_replicas() -> None:
    with pytest.raises(ValidationError, match="local_dc 'dc3' holds no replicas"):
        CassandraSettings(local_dc="dc3", replication=NTS)
    assert CassandraSettings(local_dc="dc2", replication=NTS).local_dc == "dc2"
    everywhere = "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}"
    assert CassandraSettings(local_dc="dc9", replication=everywhere).local_dc == "dc9"
    # SimpleStrategy knows no data centres: any local DC holds its replicas.
    assert CassandraSettings(local_dc="dc1").local_dc == "dc1"
