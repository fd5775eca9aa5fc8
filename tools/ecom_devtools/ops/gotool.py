"""Running the Go toolchain for a download, with errors that say what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ecom_devtools.errors import InfraError

GO_TIMEOUT_SECONDS = 600


def run_go(args: list[str], *, what: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``go ARGS`` in ``cwd`` and return its stdout; :class:`InfraError` naming ``what``
    when Go is missing or the command fails."""
    go = shutil.which("go")
    if go is None:
        raise InfraError(
            f"{what} needs the Go toolchain (go) to be fetched from the Go module proxy, and "
            "go is not on PATH; install Go 1.22 or newer, or set ECOM_CACHE_DIR to a cache "
            "that already has it"
        )
    # GOTOOLCHAIN=local: never download another toolchain; GOFLAGS cleared of -mod settings.
    full_env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "", **(env or {})}
    try:
        completed = subprocess.run(
            [go, *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=GO_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"go {' '.join(args)} took longer than {exc.timeout:g} s") from exc
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise InfraError(
            f"{what} could not be fetched with go {' '.join(args)} (exit "
            f"{completed.returncode}): {' | '.join(detail)}"
        )
    return completed.stdout
