"""TLS and credential settings: validation, and how they map onto acsylla's cluster options.

Certificates are made at run time in a temporary directory; nothing here opens a socket.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import acsylla
import pytest
from pydantic import ValidationError

from ecom_shared.cassandra.driver_options import cluster_options
from ecom_shared.cassandra.session import create_cluster
from ecom_shared.runtime.service import load_settings
from ecom_shared.settings import CassandraSettings, ServiceSettings
from tests.tls import TlsFiles, make_tls_files

KEY_PASSWORD = "key-pass-7f3a"
DB_PASSWORD = "db-pass-91c2"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"), KEY_PASSWORD)


def mutual(tls: TlsFiles, **changes: Any) -> CassandraSettings:
    """Settings for TLS with a client certificate, changed by ``changes``."""
    values: dict[str, Any] = {
        "ssl_enabled": True,
        "ssl_trusted_cert": str(tls.ca_cert),
        "ssl_cert": str(tls.client_cert),
        "ssl_private_key": str(tls.client_key),
        "ssl_private_key_password": KEY_PASSWORD,
        "ssl_verify": "peer_identity",
        "username": "pipeline",
        "password": DB_PASSWORD,
    }
    values.update(changes)
    return CassandraSettings(**{k: v for k, v in values.items() if v is not None})


def test_mutual_tls_maps_onto_acsylla_options(tls: TlsFiles) -> None:
    settings = mutual(tls, local_dc="dc1", contact_points=["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    options = cluster_options(settings)
    assert options["ssl_enabled"] is True
    assert options["ssl_verify_flags"].value == 0x03  # PEER_CERT | PEER_IDENTITY
    assert options["ssl_trusted_cert"] == tls.ca_cert.read_text()
    assert options["ssl_cert"] == tls.client_cert.read_text()
    assert options["ssl_private_key"] == tls.client_key.read_text()
    assert options["ssl_private_key_password"] == KEY_PASSWORD
    assert (options["username"], options["password"]) == ("pipeline", DB_PASSWORD)
    assert options["load_balance_dc_aware"] == "dc1"
    assert options["consistency"] is acsylla.Consistency.LOCAL_QUORUM


@pytest.mark.parametrize(
    ("mode", "flags"),
    [("none", 0x00), ("peer_cert", 0x01), ("peer_identity", 0x03), ("peer_identity_dns", 0x05)],
)
def test_every_verify_mode_sets_the_drivers_bits(tls: TlsFiles, mode: str, flags: int) -> None:
    """The C++ driver's flags: PEER_CERT 1, PEER_IDENTITY 2, PEER_IDENTITY_DNS 4. Every mode
    but ``none`` checks the chain (acsylla's own PEER_IDENTITY_DNS, 4, does not)."""
    options = cluster_options(mutual(tls, ssl_verify=mode))
    assert options["ssl_verify_flags"].value == flags
    assert options.get("hostname_resolution", False) is (mode == "peer_identity_dns")


def test_inline_pem_is_passed_as_is_and_no_tls_means_no_tls_options(tls: TlsFiles) -> None:
    ca = tls.ca_cert.read_text()
    options = cluster_options(CassandraSettings(ssl_enabled=True, ssl_trusted_cert=ca))
    assert options["ssl_trusted_cert"] == ca
    assert "ssl_cert" not in options
    assert not any(name.startswith("ssl_") for name in cluster_options(CassandraSettings()))


def test_unencrypted_client_key_gets_an_empty_password(tmp_path: Path) -> None:
    plain = make_tls_files(tmp_path, "")
    options = cluster_options(mutual(plain, ssl_private_key_password=None))
    assert options["ssl_private_key_password"] == ""


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"ssl_trusted_cert": "/nonexistent/ca.pem"}, "'/nonexistent/ca.pem' does not exist"),
        ({"ssl_cert": "/nonexistent/client.pem"}, "does not exist"),
        ({"ssl_private_key": "/nonexistent/key.pem"}, "does not exist"),
        ({"ssl_cert": None}, "set both ssl_cert and ssl_private_key"),
        ({"ssl_private_key": None}, "set both ssl_cert and ssl_private_key"),
        ({"ssl_private_key_password": None}, "encrypted: set ssl_private_key_password"),
        ({"ssl_trusted_cert": None}, "needs ssl_trusted_cert"),
        ({"ssl_enabled": False}, "set but ssl_enabled is false"),
        ({"ssl_trusted_cert": "-----BEGIN PRIVATE KEY-----\nAAAA\n"}, "no valid PEM certificate"),
    ],
)
def test_contradictory_tls_settings_are_refused(
    tls: TlsFiles, changes: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        mutual(tls, **changes)


def test_a_certificate_is_not_a_key_nor_a_key_a_certificate(tls: TlsFiles) -> None:
    with pytest.raises(ValidationError, match="holds no PEM private key"):
        mutual(tls, ssl_private_key=str(tls.client_cert))
    with pytest.raises(ValidationError, match="holds no valid PEM certificate"):
        mutual(tls, ssl_cert=str(tls.client_key))


def test_key_password_needs_an_encrypted_key(tmp_path: Path) -> None:
    plain = make_tls_files(tmp_path, "")
    with pytest.raises(ValidationError, match="is not encrypted"):
        mutual(plain, ssl_private_key_password="x")
    with pytest.raises(ValidationError, match="ssl_private_key is not"):
        CassandraSettings(ssl_enabled=True, ssl_verify="none", ssl_private_key_password="x")


def test_verify_none_needs_no_ca() -> None:
    settings = CassandraSettings(ssl_enabled=True, ssl_verify="none")
    assert cluster_options(settings)["ssl_verify_flags"].value == 0


def test_wrong_key_password_is_refused_without_quoting_it(tls: TlsFiles) -> None:
    with pytest.raises(ValidationError, match="wrong ssl_private_key_password") as raised:
        mutual(tls, ssl_private_key_password="wrong-9d1e")
    assert "wrong-9d1e" not in str(raised.value)


def test_key_must_belong_to_the_certificate(tls: TlsFiles, tmp_path: Path) -> None:
    stranger = make_tls_files(tmp_path, KEY_PASSWORD)
    with pytest.raises(ValidationError, match="does not belong to ssl_cert"):
        mutual(tls, ssl_private_key=str(stranger.client_key))


async def test_the_driver_accepts_what_the_settings_accept(tls: TlsFiles) -> None:
    create_cluster(mutual(tls)).destroy()  # loads CA, certificate and encrypted key


def test_secrets_stay_out_of_repr_and_errors(tls: TlsFiles) -> None:
    inline_key = tls.client_key.read_text()
    settings = mutual(tls, ssl_private_key=inline_key)
    for text in (repr(settings), str(settings), repr(ServiceSettings(cassandra=settings))):
        assert DB_PASSWORD not in text
        assert KEY_PASSWORD not in text
        assert "PRIVATE KEY" not in text
    with pytest.raises(ValidationError) as raised:
        mutual(tls, ssl_private_key=inline_key, ssl_private_key_password=None)
    assert "PRIVATE KEY" not in str(raised.value)


def test_tls_settings_come_from_the_environment(
    tls: TlsFiles, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ECOM_CASSANDRA__SSL_ENABLED", "true")
    monkeypatch.setenv("ECOM_CASSANDRA__SSL_TRUSTED_CERT", tls.ca_cert.read_text())
    monkeypatch.setenv("ECOM_CASSANDRA__SSL_VERIFY", "peer_identity")
    monkeypatch.setenv("ECOM_CASSANDRA__SSL_CERT", str(tls.client_cert))
    monkeypatch.setenv("ECOM_CASSANDRA__SSL_PRIVATE_KEY", tls.client_key.read_text())
    monkeypatch.setenv("ECOM_CASSANDRA__SSL_PRIVATE_KEY_PASSWORD", KEY_PASSWORD)
    cassandra = load_settings(ServiceSettings).cassandra
    assert cassandra.ssl_verify == "peer_identity"
    assert cluster_options(cassandra)["ssl_private_key"] == tls.client_key.read_text()
    monkeypatch.delenv("ECOM_CASSANDRA__SSL_PRIVATE_KEY_PASSWORD")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)
    err = capsys.readouterr().err
    assert "ECOM_CASSANDRA" in err
    assert "set ssl_private_key_password" in err
    assert "PRIVATE KEY" not in err
