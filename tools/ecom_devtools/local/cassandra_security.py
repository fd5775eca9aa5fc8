"""Optional security of a local Cassandra 5.0 node: password authentication and client TLS.

Both are off by default. With ``password_auth`` the node uses ``PasswordAuthenticator``,
``CassandraAuthorizer`` and ``CassandraRoleManager``, and creates the default superuser
``cassandra``/``cassandra`` on its first start. ``ClientEncryption`` turns on TLS on the CQL
port from PEM files, read by Cassandra's ``PEMBasedSslContextFactory`` (no JKS, no keytool).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SUPERUSER = "cassandra"
"""Name and password of the superuser Cassandra creates on the first start with auth on."""

_PEM_FACTORY = "org.apache.cassandra.security.PEMBasedSslContextFactory"

AUTH_FLAGS = (
    # Create the default superuser at once, not 10 s after start-up (dev nodes only).
    "-Dcassandra.superuser_setup_delay_ms=0",
)


@dataclass(frozen=True)
class ClientEncryption:
    """TLS on the CQL port (``client_encryption_options``), not optional once enabled.

    ``keystore`` is a PEM file with the node's private key (PKCS#8) followed by its
    certificate chain; ``truststore`` a PEM file with the CA certificates that client
    certificates must chain to. ``keystore_password`` is needed only if the key is encrypted.
    With ``require_client_auth`` the node refuses clients without a trusted certificate.
    """

    keystore: Path
    truststore: Path
    keystore_password: str | None = None
    require_client_auth: bool = False


def _quoted(value: str | Path) -> str:
    return json.dumps(str(value))  # a JSON string is a valid YAML scalar


def render_auth_yaml() -> str:
    """The ``cassandra.yaml`` lines for password authentication and role-based authorisation."""
    return """\
authenticator:
  class_name: org.apache.cassandra.auth.PasswordAuthenticator
authorizer:
  class_name: org.apache.cassandra.auth.CassandraAuthorizer
role_manager:
  class_name: org.apache.cassandra.auth.CassandraRoleManager
"""


def render_client_encryption_yaml(encryption: ClientEncryption) -> str:
    """The ``client_encryption_options`` section of ``cassandra.yaml``."""
    lines = [
        "client_encryption_options:",
        "  enabled: true",
        "  optional: false",
        "  ssl_context_factory:",
        f"    class_name: {_PEM_FACTORY}",
        f"  keystore: {_quoted(encryption.keystore.resolve())}",
        f"  truststore: {_quoted(encryption.truststore.resolve())}",
        f"  require_client_auth: {str(encryption.require_client_auth).lower()}",
    ]
    if encryption.keystore_password is not None:
        lines.append(f"  keystore_password: {_quoted(encryption.keystore_password)}")
    return "\n".join(lines) + "\n"
