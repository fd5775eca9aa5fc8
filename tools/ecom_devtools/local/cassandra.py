"""Apache Cassandra 5.0 as a local process: jars from Maven Central, a JDK 17, no Docker.

The flags, the minimal ``cassandra.yaml`` and the pitfalls come from Cassandra's own 5.0
start-up scripts and option files (see shared/cassandra-notes.md).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from ecom_devtools.errors import CqlError, InfraError
from ecom_devtools.local.cassandra_security import (
    AUTH_FLAGS,
    ClientEncryption,
    render_auth_yaml,
    render_client_encryption_yaml,
)
from ecom_devtools.local.cql import release_version, release_version_with
from ecom_devtools.local.java import REQUIRED_MAJOR, find_java
from ecom_devtools.local.maven import default_cache_dir, ensure_jars
from ecom_devtools.local.ports import ensure_ports_free
from ecom_devtools.local.process import LocalJvm, tail
from ecom_shared.settings import CassandraSettings

DEFAULT_VERSION = "5.0.9"
MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"

_READY_POLL_SECONDS = 0.5

# conf/jvm-server.options (without -XX:+AlwaysPreTouch: slower start, more memory in dev).
_SERVER_FLAGS = (
    "-ea",
    "-da:net.openhft...",
    "-XX:+UseThreadPriorities",
    "-XX:+HeapDumpOnOutOfMemoryError",
    "-Xss256k",
    "-XX:+UseTLAB",
    "-XX:+ResizeTLAB",
    "-XX:+UseNUMA",
    "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true",
    "-Dchronicle.analytics.disable=true",
)

# conf/jvm17-server.options.
_JVM17_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    "-XX:MaxGCPauseMillis=300",
    "-XX:InitiatingHeapOccupancyPercent=70",
    "-Djdk.attach.allowAttachSelf=true",
    *(
        arg
        for module in (
            "java.base/jdk.internal.misc",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.management/com.sun.jmx.remote.security",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
        )
        for arg in ("--add-exports", f"{module}=ALL-UNNAMED")
    ),
    *(
        arg
        for module in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.lang.reflect",
            "java.base/java.lang",
            "java.base/java.util",
            "java.base/java.nio",
        )
        for arg in ("--add-opens", f"{module}=ALL-UNNAMED")
    ),
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
)

# bin/cassandra.in.sh, on JDK 17+.
_CASSANDRA_IN_SH_FLAGS = (
    "--add-exports",
    "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-exports",
    "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-opens",
    "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
)

# Dev-only start/stop speed-ups for a single node that has no peers to tell it is leaving.
_DEV_SPEED_FLAGS = (
    # Estimate the memtable row overhead from 100 sample rows, not 100,000 (a slow start-up step).
    "-Dcassandra.memtable_row_overhead_computation_step=100",
    # Do not sleep 2 s after announcing the shutdown over gossip.
    "-Dcassandra.shutdown_announce_in_ms=0",
)

JVM_FLAGS: tuple[str, ...] = _SERVER_FLAGS + _JVM17_FLAGS + _CASSANDRA_IN_SH_FLAGS
"""JVM options shared by the server and the tools (nodetool) of Cassandra 5.0 on JDK 17."""


def ensure_cassandra(version: str = DEFAULT_VERSION, cache_dir: Path | None = None) -> Path:
    """Return a directory holding every runtime jar of ``cassandra-all:<version>``.

    The jars are cached as ``<cache_dir>/cassandra-<version>/lib``; on a miss, Maven fetches
    them (see :func:`ecom_devtools.local.maven.ensure_jars`).
    """
    return ensure_jars(
        (cache_dir or default_cache_dir()) / f"cassandra-{version}" / "lib",
        pom="cassandra/pom.xml",
        properties={"cassandra.version": version},
        marker=f"cassandra-all-{version}.jar",
        what=f"Cassandra {version}",
    )


@dataclass(frozen=True)
class CassandraConfig:
    """Where and how one local single-node Cassandra runs.

    ``base_dir`` holds ``conf/``, ``data/``, ``logs/`` and ``cassandra.pid``. Security is
    off unless asked for: ``password_auth`` (PasswordAuthenticator, superuser
    ``cassandra``/``cassandra``) and ``client_encryption`` (TLS on the CQL port).

    The commit log is synced every 10 s (``periodic``), so a node killed with SIGKILL loses
    the writes it acknowledged since the last sync (Cassandra replays a segment only up to its
    last sync marker). ``durable_commitlog`` syncs before acknowledging (``batch``): slower
    writes, nothing acknowledged is lost when the process dies.
    """

    base_dir: Path
    cql_port: int = 9042
    storage_port: int = 7000
    jmx_port: int = 7199
    host: str = "127.0.0.1"
    heap: str = "1G"
    version: str = DEFAULT_VERSION
    password_auth: bool = False
    client_encryption: ClientEncryption | None = None
    durable_commitlog: bool = False

    @property
    def secured(self) -> bool:
        """True if a plain, anonymous CQL client cannot talk to this node."""
        return self.password_auth or self.client_encryption is not None


def render_cassandra_yaml(config: CassandraConfig, data_dir: Path) -> str:
    """Return a minimal single-node ``cassandra.yaml`` (Cassandra rejects unknown keys)."""

    def quoted(path: Path) -> str:
        return json.dumps(str(path))  # a JSON string is a valid YAML scalar

    return f"""\
# Written by ecom_devtools; rewritten on every start.
cluster_name: dev
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
listen_address: {config.host}
rpc_address: {config.host}
storage_port: {config.storage_port}
native_transport_port: {config.cql_port}
start_native_transport: true
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters: [{{seeds: "{config.host}"}}]
{_render_commitlog(config)}
disk_access_mode: standard
storage_compatibility_mode: NONE
auto_snapshot: false
data_file_directories: [{quoted(data_dir / "data")}]
commitlog_directory: {quoted(data_dir / "commitlog")}
hints_directory: {quoted(data_dir / "hints")}
saved_caches_directory: {quoted(data_dir / "saved_caches")}
cdc_raw_directory: {quoted(data_dir / "cdc_raw")}
""" + _render_security(config)


def _render_commitlog(config: CassandraConfig) -> str:
    if config.durable_commitlog:
        return "commitlog_sync: batch"
    return "commitlog_sync: periodic\ncommitlog_sync_period: 10000ms"


def _render_security(config: CassandraConfig) -> str:
    auth = render_auth_yaml() if config.password_auth else ""
    encryption = config.client_encryption
    return auth + (render_client_encryption_yaml(encryption) if encryption else "")


def render_logback_xml(log_dir: Path) -> str:
    """Return a logback configuration: INFO to ``system.log`` (rolled at 50 MB), no console."""
    log_file = escape(str(log_dir / "system.log"))
    return f"""\
<configuration scan="false">
  <appender name="SYSTEMLOG" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>{log_file}</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
      <fileNamePattern>{log_file}.%i.zip</fileNamePattern>
      <minIndex>1</minIndex>
      <maxIndex>3</maxIndex>
    </rollingPolicy>
    <triggeringPolicy class="ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy">
      <maxFileSize>50MB</maxFileSize>
    </triggeringPolicy>
    <encoder>
      <pattern>%-5level [%thread] %date{{ISO8601}} %logger{{0}} - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="SYSTEMLOG"/>
  </root>
</configuration>
"""


class CassandraNode(LocalJvm):
    """One local Cassandra node; all state lives in ``config.base_dir``.

    A node object can be created in any process: ``stop``, ``is_running`` and ``pid`` work
    from the pid file, so ``ecom-infra down`` stops a node that ``ecom-infra up`` started.
    After :meth:`kill` the commit log is replayed on the next start.
    """

    name = "Cassandra"
    stop_timeout = 60.0

    def __init__(self, config: CassandraConfig) -> None:
        """Manage the node described by ``config`` (nothing is started yet)."""
        super().__init__(config.base_dir, "cassandra.pid")
        self.config = config
        self.conf_dir = self.base_dir / "conf"
        self.data_dir = self.base_dir / "data"
        self.log_dir = self.base_dir / "logs"

    def start(self) -> int:
        """Write the configuration and spawn the JVM in its own session; return its pid.

        Does not wait for CQL; call :meth:`wait_ready`. Raises InfraError if the node already
        runs, a port is taken, or the jars or JDK 17 are missing.
        """
        self._refuse_if_running()
        self._check_ports()
        lib_dir = ensure_cassandra(self.config.version)
        java = find_java(REQUIRED_MAJOR)
        self._write_config()
        env = {**os.environ, "MALLOC_ARENA_MAX": "4"}
        return self._process.spawn(
            self._argv(java, lib_dir), env, self.log_dir / "stdout.log", self.base_dir
        )

    async def wait_ready(
        self, timeout: float = 180.0, *, client: CassandraSettings | None = None
    ) -> float:
        """Wait until ``SELECT release_version FROM system.local`` answers; return seconds waited.

        A secured node (password auth or TLS) is probed as ``client`` connects (credentials,
        certificates), always at this node's address; an open node needs no ``client``.
        Raises InfraError with the tail of the logs if the JVM exits or time runs out.
        """
        probe = self._probe(client)
        started = time.monotonic()
        last_error: CqlError | None = None
        while time.monotonic() - started < timeout:
            self._raise_if_exited()
            try:
                await probe()
            except CqlError as exc:
                last_error = exc
                await asyncio.sleep(_READY_POLL_SECONDS)
            else:
                return time.monotonic() - started
        raise InfraError(
            f"Cassandra did not answer CQL on {self.config.host}:{self.config.cql_port} "
            f"within {timeout:.0f} s (last error: {last_error})\n{self._log_tails()}"
        )

    def _probe(self, client: CassandraSettings | None) -> Callable[[], Awaitable[str]]:
        host, port = self.config.host, self.config.cql_port
        if client is None:
            if self.config.secured:
                raise InfraError("a node with auth or TLS needs the client settings to probe it")
            return functools.partial(release_version, host, port)
        here = client.model_copy(update={"contact_points": [host], "port": port})
        return functools.partial(release_version_with, here)

    def _check_ports(self) -> None:
        ensure_ports_free(
            self.config.host,
            {
                "CQL": self.config.cql_port,
                "storage": self.config.storage_port,
                "JMX": self.config.jmx_port,
            },
            "is another Cassandra running? Stop it or choose other ports.",
        )

    def _write_config(self) -> None:
        for directory in (self.conf_dir, self.data_dir, self.log_dir, self.base_dir / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)
        yaml = render_cassandra_yaml(self.config, self.data_dir)
        (self.conf_dir / "cassandra.yaml").write_text(yaml)
        (self.conf_dir / "logback.xml").write_text(render_logback_xml(self.log_dir))

    def _argv(self, java: Path, lib_dir: Path) -> list[str]:
        heap = self.config.heap
        tmp_dir = self.base_dir / "tmp"
        return [
            str(java),
            self._marker,
            *JVM_FLAGS,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+ExitOnOutOfMemoryError",
            f"-Dcassandra.config={(self.conf_dir / 'cassandra.yaml').as_uri()}",
            f"-Dcassandra.storagedir={self.data_dir}",
            f"-Dcassandra.logdir={self.log_dir}",
            f"-Dlogback.configurationFile={self.conf_dir / 'logback.xml'}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.jmx.local.port={self.config.jmx_port}",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.unsafesystem=true",
            *_DEV_SPEED_FLAGS,
            *(AUTH_FLAGS if self.config.password_auth else ()),
            f"-Djava.io.tmpdir={tmp_dir}",
            f"-Djna.tmpdir={tmp_dir}",
            "-cp",
            f"{self.conf_dir}:{lib_dir}/*",
            MAIN_CLASS,
        ]

    def _log_tails(self) -> str:
        return "\n".join(
            f"--- last lines of {path} ---\n{tail(path, 25)}"
            for path in (self.log_dir / "system.log", self.log_dir / "stdout.log")
        )
