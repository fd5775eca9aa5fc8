"""The local node's optional security: off by default, rendered into cassandra.yaml when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_devtools.errors import InfraError
from ecom_devtools.local.cassandra import CassandraConfig, CassandraNode, render_cassandra_yaml
from ecom_devtools.local.cassandra_security import ClientEncryption

SECURITY_KEYS = ("authenticator:", "authorizer:", "role_manager:", "client_encryption_options:")


def test_default_node_has_no_security(tmp_path: Path) -> None:
    yaml = render_cassandra_yaml(CassandraConfig(tmp_path), tmp_path / "data")
    assert not [key for key in SECURITY_KEYS if key in yaml]
    assert not CassandraConfig(tmp_path).secured


def test_password_auth_and_client_tls_are_rendered(tmp_path: Path) -> None:
    encryption = ClientEncryption(
        tmp_path / "node.pem", tmp_path / "ca.pem", keystore_password="kp", require_client_auth=True
    )
    config = CassandraConfig(tmp_path, password_auth=True, client_encryption=encryption)
    yaml = render_cassandra_yaml(config, tmp_path / "data")
    assert all(key in yaml for key in SECURITY_KEYS)
    assert "org.apache.cassandra.auth.PasswordAuthenticator" in yaml
    assert "org.apache.cassandra.security.PEMBasedSslContextFactory" in yaml
    assert f'keystore: "{tmp_path / "node.pem"}"' in yaml
    assert f'truststore: "{tmp_path / "ca.pem"}"' in yaml
    assert "require_client_auth: true" in yaml
    assert "optional: false" in yaml
    assert 'keystore_password: "kp"' in yaml


async def test_secured_node_needs_client_settings_to_be_probed(tmp_path: Path) -> None:
    node = CassandraNode(CassandraConfig(tmp_path, password_auth=True))
    with pytest.raises(InfraError, match="needs the client settings"):
        await node.wait_ready(timeout=1)


def test_the_commit_log_is_synced_before_each_ack_only_when_asked(tmp_path: Path) -> None:
    def sync_lines(config: CassandraConfig) -> list[str]:
        yaml = render_cassandra_yaml(config, tmp_path / "data")
        return [line for line in yaml.splitlines() if line.startswith("commitlog_sync")]

    assert sync_lines(CassandraConfig(tmp_path)) == [
        "commitlog_sync: periodic",
        "commitlog_sync_period: 10000ms",
    ]
    assert sync_lines(CassandraConfig(tmp_path, durable_commitlog=True)) == [
        "commitlog_sync: batch"
    ]
