"""Checks that TCP ports are free before a server is started on them."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from ecom_devtools.errors import InfraError


def port_in_use(host: str, port: int) -> bool:
    """Return True if something listens on (or has otherwise claimed) ``host:port``.

    SO_REUSEADDR is set so that sockets lingering in TIME_WAIT do not count as "in use",
    just as they do not stop a JVM (which sets the same option) from binding.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def ensure_ports_free(host: str, ports: Mapping[str, int], hint: str) -> None:
    """Raise InfraError naming every port in ``ports`` (label -> number) that is taken."""
    taken = [
        f"{label} port {host}:{port}" for label, port in ports.items() if port_in_use(host, port)
    ]
    if taken:
        raise InfraError(f"{' and '.join(taken)} already in use; {hint}")
