"""Every port the suite listens on, named in one place.

The session's Cassandra node and emulator (:mod:`tests.infra`) take ``ECOM_TEST_CQL_PORT``,
``ECOM_TEST_STORAGE_PORT``, ``ECOM_TEST_JMX_PORT`` and ``ECOM_TEST_PUBSUB_PORT`` when given;
the extra nodes some modules start (the secure node, the local-infra tool's own, the benchmark's
smoke run, the refused-writes emulator) have fixed ports of their own. ``ECOM_TEST_PORT_OFFSET``
shifts every default, so two checkouts can run the suite side by side on one machine.

All stay below 32768: a port in the kernel's ephemeral range (32768-60999 on Linux by default)
can be taken at any moment by a client connection's local end, with nothing listening on it.
"""

from __future__ import annotations

import os
from typing import Final

EPHEMERAL_FROM: Final = 32768


def _offset() -> int:
    raw = os.environ.get("ECOM_TEST_PORT_OFFSET", "0")
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"ECOM_TEST_PORT_OFFSET must be an integer, not {raw!r}") from None


OFFSET: Final = _offset()


def port(default: int, variable: str | None = None) -> int:
    """``variable``'s value when set, else ``default`` shifted by ``ECOM_TEST_PORT_OFFSET``."""
    raw = os.environ.get(variable) if variable else None
    chosen = int(raw) if raw else default + OFFSET
    if not 1024 <= chosen < EPHEMERAL_FROM:
        source = variable if raw else f"{default} + ECOM_TEST_PORT_OFFSET ({OFFSET})"
        highest = EPHEMERAL_FROM - 1
        raise RuntimeError(f"test port {chosen} (from {source}) is not in 1024-{highest}")
    return chosen


# The session's node and emulator.
CQL: Final = port(19042, "ECOM_TEST_CQL_PORT")
STORAGE: Final = port(17000, "ECOM_TEST_STORAGE_PORT")
JMX: Final = port(17199, "ECOM_TEST_JMX_PORT")
PUBSUB: Final = port(18085, "ECOM_TEST_PUBSUB_PORT")

# tests/tools/local/test_local_infra.py: the local-infra tool's own node and emulator.
LOCAL_CQL: Final = port(19142)
LOCAL_STORAGE: Final = port(17100)
LOCAL_JMX: Final = port(17299)
LOCAL_PUBSUB: Final = port(18185)

# tests/secure_node.py: the node with authentication and TLS.
SECURE_CQL: Final = port(29142)
SECURE_STORAGE: Final = port(27100)
SECURE_JMX: Final = port(27299)

# tests/integration/test_refused_writes.py: an emulator beside the secure node.
REFUSED_WRITES_PUBSUB: Final = port(29085)

# tests/tools/bench/test_bench.py: the benchmark's smoke run starts its own node and emulator.
BENCH_CQL: Final = port(29342)
BENCH_STORAGE: Final = port(27400)
BENCH_JMX: Final = port(27499)
BENCH_PUBSUB: Final = port(28385)
