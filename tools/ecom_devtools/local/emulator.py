"""The official Google Cloud Pub/Sub emulator (a gcloud component) as a local process.

The component's launcher script (``bin/cloud-pubsub-emulator``) ends in ``exec java``, so
its pid would be the JVM's too; the jar is still run directly, because the script splits
``JAVA_OPTS`` on whitespace and picks ``java`` from ``JAVA_HOME``/PATH, whereas here the
arguments are passed as a list and the JVM is the one :func:`find_any_java` chose.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import aiohttp

from ecom_devtools.errors import InfraError
from ecom_devtools.local.java import find_any_java
from ecom_devtools.local.ports import ensure_ports_free
from ecom_devtools.local.process import LocalJvm, tail

_COMPONENT_DIR = Path("platform") / "pubsub-emulator"
_JAR_GLOB = "cloud-pubsub-emulator-*-all.jar"
_READY_POLL_SECONDS = 0.25
_INSTALL_HINT = (
    "install it with `gcloud components install pubsub-emulator`, or on Debian/Ubuntu "
    "with the apt package `google-cloud-cli-pubsub-emulator`"
)


@functools.cache
def sdk_root() -> Path:
    """Return the Google Cloud SDK root as ``gcloud info`` reports it."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise InfraError(
            f"gcloud is not installed, so the Pub/Sub emulator is missing; {_INSTALL_HINT}"
        )
    completed = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"],
        capture_output=True,
        text=True,
        check=False,
    )
    root = completed.stdout.strip()
    if completed.returncode != 0 or not root:
        raise InfraError(f"`gcloud info` failed: {completed.stderr.strip()}")
    return Path(root)


def emulator_jar() -> Path:
    """Return the Pub/Sub emulator's self-contained jar, or raise InfraError if not installed."""
    lib_dir = sdk_root() / _COMPONENT_DIR / "lib"
    jars = sorted(lib_dir.glob(_JAR_GLOB))
    if not jars:
        raise InfraError(f"the Pub/Sub emulator is not installed under {lib_dir}; {_INSTALL_HINT}")
    return jars[-1]


@dataclass(frozen=True)
class EmulatorConfig:
    """Where and how one local Pub/Sub emulator runs (its state is in memory only)."""

    base_dir: Path
    host: str = "127.0.0.1"
    port: int = 8085
    heap: str = "512m"


class PubSubEmulator(LocalJvm):
    """One local Pub/Sub emulator; ``emulator.pid`` and ``emulator.log`` live in base_dir.

    It keeps everything in memory: after :meth:`kill` (or :meth:`stop`) all topics,
    subscriptions and messages are gone.
    """

    name = "the Pub/Sub emulator"
    stop_timeout = 30.0

    def __init__(self, config: EmulatorConfig) -> None:
        """Manage the emulator described by ``config`` (nothing is started yet)."""
        super().__init__(config.base_dir, "emulator.pid")
        self.config = config
        self.log_file = self.base_dir / "emulator.log"

    @property
    def host_port(self) -> str:
        """The value for ``PUBSUB_EMULATOR_HOST``, e.g. ``127.0.0.1:8085``."""
        return f"{self.config.host}:{self.config.port}"

    def start(self) -> int:
        """Spawn the emulator JVM in its own session; return its pid (see :meth:`wait_ready`)."""
        self._refuse_if_running()
        ensure_ports_free(
            self.config.host,
            {"Pub/Sub emulator": self.config.port},
            "is another emulator running? Stop it or choose another port.",
        )
        argv = [
            str(find_any_java()),
            self._marker,
            f"-Xmx{self.config.heap}",
            "-jar",
            str(emulator_jar()),
            f"--host={self.config.host}",
            f"--port={self.config.port}",
        ]
        self.base_dir.mkdir(parents=True, exist_ok=True)
        return self._process.spawn(argv, dict(os.environ), self.log_file, self.base_dir)

    async def wait_ready(self, timeout: float = 60.0) -> float:
        """Poll ``GET http://host:port/`` until it answers 200; return seconds waited."""
        started = time.monotonic()
        url = f"http://{self.host_port}/"
        client_timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=client_timeout) as session:
            while time.monotonic() - started < timeout:
                self._raise_if_exited()
                if await _answers_ok(session, url):
                    return time.monotonic() - started
                await asyncio.sleep(_READY_POLL_SECONDS)
        raise InfraError(
            f"the Pub/Sub emulator did not answer {url} within {timeout:.0f} s\n{self._log_tails()}"
        )

    def _log_tails(self) -> str:
        return f"--- last lines of {self.log_file} ---\n{tail(self.log_file, 25)}"


async def _answers_ok(session: aiohttp.ClientSession, url: str) -> bool:
    """Return True if ``url`` answers HTTP 200, False if it refuses or fails."""
    try:
        async with session.get(url) as response:
            return response.status == HTTPStatus.OK
    except (aiohttp.ClientError, TimeoutError):
        return False
