"""The pipeline's services as child processes, started the way a user starts them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

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

    def start(self, base_env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", SERVICE_MODULES[self.name], *self.args]
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
