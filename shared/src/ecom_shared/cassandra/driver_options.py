"""Settings to acsylla: the keyword arguments of ``acsylla.create_cluster``.

A pure mapping (it reads the PEM files, nothing else), so unit tests can check exactly what
the driver is given without a network.
"""

from __future__ import annotations

import enum
from typing import Any, Final

import acsylla

from ecom_shared.cassandra.pem import read_pem
from ecom_shared.settings import CassandraSettings

IO_THREADS: Final = 1
"""The driver's I/O threads: one event loop's requests keep one thread busy at most."""


def cluster_options(settings: CassandraSettings) -> dict[str, Any]:
    """The keyword arguments of ``acsylla.create_cluster`` for ``settings`` (PEM files read)."""
    options: dict[str, Any] = {
        "port": settings.port,
        "consistency": acsylla.Consistency[settings.consistency],
        "request_timeout": settings.request_timeout_seconds,
        "connect_timeout": settings.connect_timeout_seconds,
        "num_threads_io": IO_THREADS,
        "log_level": "error",
        "exponential_reconnect_base_delay_ms": 500,
        "exponential_reconnect_max_delay_ms": 10_000,
    }
    if settings.local_dc:
        options["load_balance_dc_aware"] = settings.local_dc
    if settings.username is not None and settings.password is not None:
        options["username"] = settings.username
        options["password"] = settings.password.get_secret_value()
    if settings.ssl_enabled:
        options.update(_tls_options(settings))
    return options


class VerifyFlags(enum.Enum):
    """The C++ driver's ``CASS_SSL_VERIFY_*`` bit sets, one per ``ssl_verify`` mode.

    acsylla 1.2.0's own ``SSLVerifyFlags`` cannot be used: its ``PEER_IDENTITY`` equals
    ``PEER_CERT`` (the node's IP address is never checked) and its ``PEER_IDENTITY_DNS`` lacks
    the ``PEER_CERT`` bit (a certificate from any CA is accepted if the host name matches).
    acsylla passes on the ``value`` of whatever enum member it is given.
    """

    none = 0x00
    peer_cert = 0x01
    peer_identity = 0x01 | 0x02
    peer_identity_dns = 0x01 | 0x04


def _tls_options(settings: CassandraSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "ssl_enabled": True,
        "ssl_verify_flags": VerifyFlags[settings.ssl_verify],
    }
    if settings.ssl_verify == "peer_identity_dns":
        options["hostname_resolution"] = True  # reverse DNS gives the name to check
    if settings.ssl_trusted_cert is not None:
        options["ssl_trusted_cert"] = read_pem(settings.ssl_trusted_cert)
    if settings.ssl_cert is not None and settings.ssl_private_key is not None:
        options["ssl_cert"] = read_pem(settings.ssl_cert)
        options["ssl_private_key"] = read_pem(settings.ssl_private_key.get_secret_value())
        password = settings.ssl_private_key_password
        options["ssl_private_key_password"] = password.get_secret_value() if password else ""
    return options
