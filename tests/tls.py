"""Throwaway certificates for TLS tests, made at run time (no key is ever committed).

One CA signs a node certificate and a client certificate; keys are EC P-256 (fast to make,
and read by both Cassandra's PEM factory and the C++ driver). The node certificate names
the host ``localhost`` and no IP address, so a client checking the node's IP address
(``peer_identity``) must refuse it, while one checking the host name (``peer_identity_dns``,
127.0.0.1 resolving back to ``localhost``) or only the chain (``peer_cert``) accepts it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey
NODE_HOST_NAME = "localhost"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA, the node's keystore (key + chain), a client's certificate and key."""

    ca_cert: Path
    node_keystore: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path  # a CA that signed nothing here: trusting only it must fail


@dataclass(frozen=True)
class _Issuer:
    name: str
    key: Key


def _certificate(
    subject: str, key: Key, issuer: _Issuer | None, usage: x509.ObjectIdentifier | None
) -> x509.Certificate:
    """A CA certificate when ``usage`` is None, else a leaf for that extended key usage."""
    signer = issuer or _Issuer(subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, signer.name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=usage is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        names = x509.SubjectAlternativeName([x509.DNSName(NODE_HOST_NAME)])
        builder = builder.add_extension(names, critical=False)
    return builder.sign(signer.key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Key, password: str) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def make_tls_files(directory: Path, client_key_password: str) -> TlsFiles:
    """Write the PEM files into ``directory``; the client key is encrypted unless the password
    is empty. The node's key is not encrypted (Cassandra's PEM factory reads it as is)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, node_key, client_key, other_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in "1234"
    )
    ca = _Issuer("ecom test CA", ca_key)
    ca_cert = _certificate(ca.name, ca_key, None, None)
    node = _certificate("cassandra-test-node", node_key, ca, ExtendedKeyUsageOID.SERVER_AUTH)
    client = _certificate("pipeline", client_key, ca, ExtendedKeyUsageOID.CLIENT_AUTH)
    files = TlsFiles(
        ca_cert=directory / "ca.pem",
        node_keystore=directory / "node-keystore.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        other_ca_cert=directory / "other-ca.pem",
    )
    files.ca_cert.write_bytes(_pem(ca_cert))
    files.node_keystore.write_bytes(_key_pem(node_key, "") + _pem(node) + _pem(ca_cert))
    files.client_cert.write_bytes(_pem(client))
    files.client_key.write_bytes(_key_pem(client_key, client_key_password))
    files.other_ca_cert.write_bytes(_pem(_certificate("some other CA", other_key, None, None)))
    for path in (files.node_keystore, files.client_key):
        path.chmod(0o600)
    return files
