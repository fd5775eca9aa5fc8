"""KEDA's CustomResourceDefinitions, read from KEDA's Go module and cached.

``go mod download`` fetches the module ``github.com/kedacore/keda/v2`` at a pinned version
from the Go module proxy; its ``config/crd/bases`` folder holds the CRDs that KEDA's release
installs. Only the CRD files are kept in the cache, and their OpenAPI schemas are what the
manifests' ``ScaledObject``s and ``TriggerAuthentication``s are validated against.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ecom_devtools.errors import InfraError
from ecom_devtools.local.maven import default_cache_dir
from ecom_devtools.ops.gotool import run_go

KEDA_MODULE = "github.com/kedacore/keda/v2"
# The newest release whose module the machines' Go 1.26 accepts (v2.21.1 asks for Go 1.27).
KEDA_VERSION = "v2.21.0"
CRD_FOLDER = "config/crd/bases"


def crd_dir(cache_dir: Path | None = None) -> Path:
    """The cached folder of KEDA's CRD files, filled from the Go module if needed."""
    cache = cache_dir or default_cache_dir()
    target = cache / f"keda-crds-{KEDA_VERSION}"
    if any(target.glob("*.yaml")):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="keda-crds.partial-", dir=cache))
    try:
        out = run_go(
            ["mod", "download", "-json", f"{KEDA_MODULE}@{KEDA_VERSION}"],
            what=f"KEDA {KEDA_VERSION}'s CRDs",
            cwd=staging,
        )
        source = Path(json.loads(out)["Dir"]) / CRD_FOLDER
        files = sorted(source.glob("*.yaml"))
        if not files:
            raise InfraError(f"KEDA's module has no CRD files under {source}")
        for path in files:
            shutil.copyfile(path, staging / path.name)
        try:
            staging.rename(target)
        except OSError:
            if not any(target.glob("*.yaml")):  # not a concurrent download winning
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def crd_schemas(cache_dir: Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """The OpenAPI v3 schema of every served version of every KEDA CRD, by
    ``(apiVersion, kind)``, e.g. ``("keda.sh/v1alpha1", "ScaledObject")``."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(crd_dir(cache_dir).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schema = version["schema"]["openAPIV3Schema"]
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas
