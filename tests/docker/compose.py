"""Driving ``docker compose`` from tests: one project, its own name, the repository's files."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecom_devtools.local.drain import drain_now
from tests.compose_files import ROOT
from tests.polling import eventually_blocking, within_blocking

# Variables of the developer's shell that would change what the Compose files mean.
_FOREIGN = ("ECOM_", "PUBSUB_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "COMPOSE_")


def docker_overrides(env_file: Path) -> dict[str, str]:
    """Bring up an engine, Compose v2 and any stand-in images (``ecom-docker up``); return the
    image variables to pass to Compose (empty where the official images are available)."""
    command = Path(sys.executable).parent / "ecom-docker"
    subprocess.run([str(command), "up", "--env-file", str(env_file)], check=True, timeout=3000)
    overrides = {}
    for line in env_file.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            overrides[name.strip()] = value.strip()
    return overrides


@dataclass
class Compose:
    """``docker compose -p PROJECT -f ...`` with a controlled environment."""

    project: str
    images: Mapping[str, str]
    files: Sequence[Path] = (ROOT / "compose.yaml",)
    log: list[str] = field(default_factory=list)
    variables: Mapping[str, str] = field(default_factory=dict)
    """More variables for every command (a host port of the project's own)."""

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
        return {**env, **self.images, **self.variables, **(extra or {})}

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
        check: bool = True,
        record: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        argv = ["docker", "compose", "-p", self.project]
        for path in self.files:
            argv += ["-f", str(path)]
        argv += list(args)
        started = time.monotonic()
        result = subprocess.run(
            argv,
            cwd=ROOT,
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if record:
            seconds = time.monotonic() - started
            self.log.append(f"$ {' '.join(args)}  ({seconds:.1f} s, exit {result.returncode})")
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {result.returncode}\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def containers(self, service: str | None = None) -> list[dict[str, Any]]:
        """``ps -a`` as dictionaries (Name, Service, State, ExitCode, Health, ...)."""
        args = ["ps", "-a", "--format", "json"] + ([service] if service else [])
        output = self.run(*args, record=False).stdout.strip()
        if not output:
            return []
        if output.startswith("["):
            loaded: list[dict[str, Any]] = json.loads(output)
            return loaded
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def address(self, service: str) -> str:
        """The private address of a service's (first) container on the project network."""
        name = self.containers(service)[0]["Name"]
        inspected = subprocess.run(
            ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", name],
            capture_output=True,
            text=True,
            check=True,
        )
        networks: dict[str, dict[str, Any]] = json.loads(inspected.stdout)
        return str(next(iter(networks.values()))["IPAddress"])

    def published(self, service: str, port: int) -> str:
        """``HOST:PORT`` where the host reaches a service's container port (``compose port``)."""
        return self.run("port", service, str(port), record=False).stdout.strip()

    def tear_down(self, *, tail: int = 40, shown: int = 20_000) -> None:
        """Print the commands run and the last ``tail`` lines each container wrote (at most
        ``shown`` characters), then take the project down with its volumes."""
        logs = self.run("logs", "--no-color", "--tail", str(tail), check=False, timeout=120)
        print("\n".join(self.log), logs.stdout[-shown:], sep="\n")
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)

    def wait_until(self, what: str, predicate: Any, timeout: float) -> None:
        """Poll ``predicate`` at most a second apart (each look runs docker commands)."""
        eventually_blocking(predicate, timeout, what=what, every=1.0)


def free_port() -> int:
    """A TCP port nothing listens on now, for a host port of the project under test."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def running(compose: Compose, service: str) -> list[dict[str, Any]]:
    return [c for c in compose.containers(service) if c["State"] == "running"]


def verify(compose: Compose) -> dict[str, Any]:
    result = compose.run(
        "run", "--rm", "--no-deps", "verifier",
        "ecom-verify", "--manifest", "/data/manifest.jsonl", "--wait", "300", "--json",
        check=False, timeout=420,
    )  # fmt: skip
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, report
    assert report["ok"], report
    return report


def dead_lettered(compose: Compose, expected: int, timeout: float = 60) -> set[str]:
    """The source ids of what reached the dead-letter topic, once ``expected`` have (each
    message counted once, whatever redeliveries did)."""
    host_port = f"{compose.address('pubsub-emulator')}:8085"
    sources: set[str] = set()

    def all_came() -> bool:
        messages = asyncio.run(drain_now(host_port, "local-project", "dead-letter-sub"))
        assert all(m.attributes.get("error_reason") for m in messages), messages
        sources.update(m.attributes["source_message_id"] for m in messages)
        return len(sources) >= expected

    within_blocking(all_came, timeout, every=0.5)
    return sources


def healthy(compose: Compose, service: str, count: int) -> bool:
    """``count`` containers of ``service`` run and their image's healthcheck (``ecom-health``,
    which asks the service's /readyz) passes."""
    states = [c.get("Health") for c in running(compose, service)]
    return states == ["healthy"] * count
