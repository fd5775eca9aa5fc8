"""The pipeline's services as child processes, started the way a user starts them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ecom_devtools.errors import InfraError

SERVICE_MODULES = {
    "order-consumer": "ecom_order_consumer",
    "payment-consumer": "ecom_payment_consumer",
    "dlq-worker": "ecom_dlq_worker",
    "producer": "ecom_producer",
}


@dataclass
class ServiceProcess:
    """One service: ``python -m <module> [args]``, its output in ``log_path``."""

    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def module_name(self) -> str:
        """The module ``python -m`` runs."""
        return SERVICE_MODULES[self.name]

    def start(self, base_env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", self.module_name, *self.args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                env={**base_env, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def wait(self, timeout: float) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.wait(timeout)

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def served_port(self) -> int | None:
        """The metrics and health port the service logged (``http.serving``), if it did yet."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        for line in text.splitlines():
            if '"http.serving"' in line:
                try:
                    return int(json.loads(line)["port"])
                except (ValueError, KeyError, TypeError):
                    continue
        return None

    async def wait_served_port(self, timeout: float = 120.0) -> int:
        """Wait until the service serves its port (start ``ECOM_HTTP__PORT=0``); return it."""
        deadline = time.monotonic() + timeout
        while (port := self.served_port()) is None:
            if self.poll() is not None:
                raise InfraError(f"{self.name} exited ({self.poll()}) before serving its port")
            if time.monotonic() > deadline:
                raise InfraError(f"{self.name} served no port within {timeout:.0f} s")
            await asyncio.sleep(0.2)
        return port

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the exit code."""
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)
