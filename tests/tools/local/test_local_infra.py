"""Smoke tests: the real Cassandra and Pub/Sub emulator start, answer, pause and stop.

They run on non-default ports in temporary directories, so a developer's own
``ecom-infra up`` (9042/7000/7199/8085) can keep running meanwhile. Timings and memory
are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from http import HTTPStatus
from pathlib import Path

import aiohttp
import pytest

from ecom_devtools.errors import CqlError, InfraError
from ecom_devtools.local.cassandra import CassandraConfig, CassandraNode
from ecom_devtools.local.cli import EXIT_NOT_RUNNING
from ecom_devtools.local.cql import query, release_version
from ecom_devtools.local.emulator import EmulatorConfig, PubSubEmulator
from ecom_devtools.local.infra import started_infra
from ecom_devtools.local.process import pid_alive, read_cmdline
from tests import ports

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
CQL_PORT = ports.LOCAL_CQL
STORAGE_PORT = ports.LOCAL_STORAGE
JMX_PORT = ports.LOCAL_JMX
PUBSUB_PORT = ports.LOCAL_PUBSUB
TOOLS_DIR = Path(__file__).resolve().parents[2]


def _mib(value: int | None) -> str:
    return "?" if value is None else f"{value / 2**20:.0f} MiB"


@pytest.fixture
def node(tmp_path: Path) -> CassandraNode:
    config = CassandraConfig(
        tmp_path / "cassandra", cql_port=CQL_PORT, storage_port=STORAGE_PORT, jmx_port=JMX_PORT
    )
    return CassandraNode(config)


async def test_cassandra_starts_pauses_resumes_and_stops(node: CassandraNode) -> None:
    began = time.monotonic()
    pid = await asyncio.to_thread(node.start)
    try:
        await node.wait_ready(timeout=180)
        print(
            f"\nCassandra: CQL ready {time.monotonic() - began:.1f} s after start, "
            f"RSS {_mib(node.rss_bytes())}"
        )
        assert node.pid == pid
        assert node.pid_file.read_text().strip() == str(pid)
        assert await release_version(HOST, CQL_PORT) == node.config.version
        assert CassandraNode(node.config).pid == pid  # found again through the pid file

        node.pause()
        with pytest.raises(CqlError):
            await release_version(HOST, CQL_PORT, request_timeout=1.0)
        assert node.is_running()  # paused is still running
        node.resume()
        await node.wait_ready(timeout=30)
    finally:
        await asyncio.to_thread(node.stop)
    assert not pid_alive(pid)
    assert not node.is_running()
    assert not node.pid_file.exists()
    node.stop()  # idempotent


async def test_emulator_starts_answers_and_stops(tmp_path: Path) -> None:
    emulator = PubSubEmulator(EmulatorConfig(tmp_path / "pubsub", port=PUBSUB_PORT))
    began = time.monotonic()
    pid = await asyncio.to_thread(emulator.start)
    try:
        await emulator.wait_ready(timeout=60)
        print(
            f"\nPub/Sub emulator: ready {time.monotonic() - began:.1f} s after start, "
            f"RSS {_mib(emulator.rss_bytes())}"
        )
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{emulator.host_port}/") as response,
        ):
            assert response.status == HTTPStatus.OK
        args = read_cmdline(pid)
        assert args is not None
        assert args[0].endswith("/java")  # the pid is the JVM itself, not a launcher
    finally:
        await asyncio.to_thread(emulator.stop)
    assert not pid_alive(pid)
    assert not emulator.is_running()


def test_start_refuses_a_cql_port_in_use(node: CassandraNode) -> None:
    with socket.socket() as listener:
        listener.bind((HOST, CQL_PORT))
        listener.listen()
        with pytest.raises(InfraError, match=re.escape(f"CQL port {HOST}:{CQL_PORT}")):
            node.start()
    assert not node.is_running()


async def test_started_infra_stops_both_on_exit(tmp_path: Path) -> None:
    async with started_infra(tmp_path, CQL_PORT, STORAGE_PORT, JMX_PORT, PUBSUB_PORT) as (
        node,
        emulator,
    ):
        pids = [node.pid, emulator.pid]
        rows = await query(HOST, CQL_PORT, "SELECT cluster_name FROM system.local")
        assert rows == [{"cluster_name": "dev"}]
    assert None not in pids
    assert not any(pid_alive(pid) for pid in pids if pid is not None)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TOOLS_DIR)}
    return subprocess.run(
        [sys.executable, "-m", "ecom_devtools", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_cli_up_status_cql_down_across_processes(tmp_path: Path) -> None:
    directory = str(tmp_path / "infra")
    ports = [
        "--cql-port",
        str(CQL_PORT),
        "--storage-port",
        str(STORAGE_PORT),
        "--jmx-port",
        str(JMX_PORT),
        "--pubsub-port",
        str(PUBSUB_PORT),
    ]
    up = _cli("up", "--dir", directory, *ports)
    try:
        assert up.returncode == 0, up.stderr
        assert f"export PUBSUB_EMULATOR_HOST={HOST}:{PUBSUB_PORT}" in up.stdout
        assert f"export ECOM_CASSANDRA__PORT={CQL_PORT}" in up.stdout
        status = _cli("status", "--dir", directory)
        assert status.returncode == 0, status.stdout + status.stderr
        cql = _cli("cql", "--dir", directory, "SELECT release_version FROM system.local")
        assert cql.returncode == 0, cql.stderr
        assert json.loads(cql.stdout) == {"release_version": "5.0.9"}
        pids = [
            int((tmp_path / "infra" / name).read_text())
            for name in ("cassandra/cassandra.pid", "pubsub/emulator.pid")
        ]
    finally:
        down = _cli("down", "--dir", directory)
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(pid) for pid in pids)
    assert _cli("status", "--dir", directory).returncode == EXIT_NOT_RUNNING
