"""kustomize, built from its Go module and cached: ``ensure_kustomize()`` and ``build()``.

The binary is installed with ``go install`` into a staging folder and renamed into the cache
once complete, so an interrupted build never leaves half a binary behind. Debian's kubectl is
too old for the manifests' kustomize features, and the newest kustomize needs a newer Go than
these machines have: the version is pinned here.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ecom_devtools.errors import InfraError
from ecom_devtools.local.maven import default_cache_dir
from ecom_devtools.ops.gotool import run_go

KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.5.0"
BUILD_TIMEOUT_SECONDS = 120


def kustomize_path(cache_dir: Path | None = None) -> Path:
    """Where the pinned kustomize is (or will be) cached."""
    cache = cache_dir or default_cache_dir()
    return cache / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"


def ensure_kustomize(cache_dir: Path | None = None) -> Path:
    """Return the cached kustomize binary, building it with ``go install`` first if needed."""
    binary = kustomize_path(cache_dir)
    if binary.is_file():
        return binary
    binary.parent.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="kustomize.partial-", dir=binary.parent.parent))
    try:
        run_go(
            ["install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"],
            what=f"kustomize {KUSTOMIZE_VERSION}",
            cwd=staging,
            env={"GOBIN": str(staging / "bin")},
        )
        built = staging / "bin" / "kustomize"
        if not built.is_file():
            raise InfraError(f"go install finished but {built} is missing")
        try:
            (staging / "bin").rename(binary.parent)
        except OSError:
            if not binary.is_file():  # not a concurrent build winning
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return binary


def build(kustomization: Path, cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """``kustomize build`` of the folder ``kustomization``: its resources, in output order."""
    binary = ensure_kustomize(cache_dir)
    completed = subprocess.run(
        [str(binary), "build", str(kustomization)],
        capture_output=True,
        text=True,
        check=False,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        raise InfraError(f"kustomize build {kustomization} failed: {completed.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(completed.stdout) if doc is not None]
