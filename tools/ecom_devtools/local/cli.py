"""``ecom-infra``: run Cassandra and the Pub/Sub emulator locally, without Docker.

    eval "$(ecom-infra up)"      # start both, wait until they answer, export the settings
    ecom-infra status
    ecom-infra cql "SELECT * FROM system_schema.keyspaces"
    ecom-infra down

Progress and errors go to stderr; ``up`` prints only ``export`` lines on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from ecom_devtools.errors import InfraError, run_subcommand
from ecom_devtools.local.cassandra import CassandraNode
from ecom_devtools.local.cql import iter_rows
from ecom_devtools.local.emulator import PubSubEmulator
from ecom_devtools.local.infra import InfraConfig, load_config, save_config, wait_all_ready

DESCRIPTION = "Run Cassandra and the Pub/Sub emulator locally, without Docker."
DEFAULT_DIR = Path(".local") / "infra"
MAX_PORT = 65535
EXIT_NOT_RUNNING = 3
"""``status`` exit code when a server is not running (as LSB init scripts use)."""


def env_for(cql_port: int, pubsub_host_port: str) -> dict[str, str]:
    """Return the environment variables an application needs to use the local servers. A
    project id already set (say, from examples/original-names.env) is kept: the emulator takes
    any."""
    return {
        "PUBSUB_EMULATOR_HOST": pubsub_host_port,
        "ECOM_CASSANDRA__CONTACT_POINTS": '["127.0.0.1"]',
        "ECOM_CASSANDRA__PORT": str(cql_port),
        "ECOM_PUBSUB__PROJECT_ID": os.environ.get("ECOM_PUBSUB__PROJECT_ID", "local-project"),
    }


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _effective_config(args: argparse.Namespace, saved: InfraConfig | None) -> InfraConfig:
    """Return the saved configuration of ``--dir`` (if any) updated by the given ports."""
    config = saved or InfraConfig(args.dir)
    overrides = {
        name: value
        for name in ("cql_port", "storage_port", "jmx_port", "pubsub_port")
        if (value := getattr(args, name, None)) is not None
    }
    return dataclasses.replace(config, **overrides)


def _servers(config: InfraConfig) -> tuple[CassandraNode, PubSubEmulator]:
    return CassandraNode(config.cassandra()), PubSubEmulator(config.emulator())


def _address(server: CassandraNode | PubSubEmulator) -> str:
    if isinstance(server, CassandraNode):
        return f"CQL {server.config.host}:{server.config.cql_port}"
    return server.host_port


def _pick_running(requested: InfraConfig, saved: InfraConfig | None) -> InfraConfig:
    """Keep the saved ports of a server that already runs; use the requested ones otherwise."""
    if saved is None:
        return requested
    node, emulator = _servers(saved)
    config = requested
    if node.is_running():
        config = dataclasses.replace(
            config,
            cql_port=saved.cql_port,
            storage_port=saved.storage_port,
            jmx_port=saved.jmx_port,
        )
    if emulator.is_running():
        config = dataclasses.replace(config, pubsub_port=saved.pubsub_port)
    return config


def _start_missing(
    node: CassandraNode, emulator: PubSubEmulator
) -> list[CassandraNode | PubSubEmulator]:
    """Start whichever server is not running yet; return those started."""
    started: list[CassandraNode | PubSubEmulator] = []
    try:
        for name, server in (("Cassandra", node), ("Pub/Sub emulator", emulator)):
            if server.is_running():
                _say(f"{name} already runs: {_describe(server)}")
                continue
            pid = server.start()
            started.append(server)
            _say(f"{name} started (pid {pid}), logs in {server.base_dir}")
    except InfraError:
        _stop_all(started)
        raise
    return started


def _stop_all(servers: Sequence[CassandraNode | PubSubEmulator]) -> None:
    for server in servers:
        server.stop()


def cmd_up(args: argparse.Namespace) -> int:
    """Start both servers (skipping running ones), wait until ready, print the exports."""
    saved = load_config(args.dir)
    config = _pick_running(_effective_config(args, saved), saved)
    node, emulator = _servers(config)
    started = _start_missing(node, emulator)
    save_config(config)
    try:
        cql_wait, pubsub_wait = asyncio.run(wait_all_ready(node, emulator, args.timeout))
    except (InfraError, KeyboardInterrupt):
        _stop_all(started)
        raise
    _say(f"ready: Cassandra CQL after {cql_wait:.1f} s, Pub/Sub emulator after {pubsub_wait:.1f} s")
    for key, value in env_for(config.cql_port, emulator.host_port).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop both servers of ``--dir``; succeeds if they were not running."""
    node, emulator = _servers(load_config(args.dir) or InfraConfig(args.dir))
    for name, server in (("Cassandra", node), ("Pub/Sub emulator", emulator)):
        pid = server.pid
        server.stop()
        _say(f"{name} stopped (pid {pid})" if pid is not None else f"{name} was not running")
    return 0


def _describe(server: CassandraNode | PubSubEmulator) -> str:
    pid = server.pid
    if pid is None:
        return "stopped"
    rss = server.rss_bytes()
    memory = f", RSS {rss / 2**20:.0f} MiB" if rss is not None else ""
    return f"running, pid {pid}, {_address(server)}{memory}"


def cmd_status(args: argparse.Namespace) -> int:
    """Print the state of both servers; exit 0 if both run, else EXIT_NOT_RUNNING."""
    config = load_config(args.dir) or InfraConfig(args.dir)
    node, emulator = _servers(config)
    print(f"cassandra: {_describe(node)}")
    print(f"pubsub-emulator: {_describe(emulator)}")
    return 0 if node.is_running() and emulator.is_running() else EXIT_NOT_RUNNING


def _jsonable(value: object) -> object:
    """Turn a driver value (UUID, datetime, Decimal, bytes, set, map...) into JSON data."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes | bytearray):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


async def _print_rows(host: str, port: int, statement: str, keyspace: str | None) -> int:
    count = 0
    async for row in iter_rows(host, port, statement, keyspace=keyspace):
        print(json.dumps(_jsonable(row), ensure_ascii=False))
        count += 1
    return count


def cmd_cql(args: argparse.Namespace) -> int:
    """Run one CQL statement and print each row as a JSON line."""
    config = _effective_config(args, load_config(args.dir))
    count = asyncio.run(_print_rows(config.host, config.cql_port, args.statement, args.keyspace))
    _say(f"({count} row{'s' if count != 1 else ''})")
    return 0


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return value


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help=f"state directory (default: ./{DEFAULT_DIR})"
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``ecom-infra``."""
    parser = argparse.ArgumentParser(prog="ecom-infra", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start Cassandra and the Pub/Sub emulator")
    _add_dir(up)
    up.add_argument("--cql-port", type=_port)
    up.add_argument("--storage-port", type=_port)
    up.add_argument("--jmx-port", type=_port)
    up.add_argument("--pubsub-port", type=_port)
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness")
    up.set_defaults(handler=cmd_up)
    for name, handler, text in (
        ("down", cmd_down, "stop both servers"),
        ("status", cmd_status, "show whether they run"),
    ):
        sub = commands.add_parser(name, help=text)
        _add_dir(sub)
        sub.set_defaults(handler=handler)
    cql = commands.add_parser("cql", help="run one CQL statement, print rows as JSON lines")
    _add_dir(cql)
    cql.add_argument("--cql-port", type=_port, help="default: the port `up` used")
    cql.add_argument("-k", "--keyspace")
    cql.add_argument("statement")
    cql.set_defaults(handler=cmd_cql)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ecom-infra``; return the process exit status."""
    return run_subcommand(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
