"""The Kubernetes manifests as a cluster would get them: ``kustomize build`` of each overlay
(kustomize built from its Go module, ``ecom_devtools.ops.kustomize``), and lookups in the result.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ecom_devtools.errors import InfraError
from ecom_devtools.ops import kustomize

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("gcp", "local")
COMPONENTS = ("dlq-worker-cronjob", "gcp-key")
PROJECT_IMAGE_PREFIX = "ecom-pipeline/"
THIRD_PARTY_IMAGES = ("ecom-pipeline/pubsub-emulator",)  # built here, but Google's emulator


@dataclass(frozen=True)
class Rendered:
    """One overlay's output."""

    name: str
    documents: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        return found

    def config_map(self, name: str) -> dict[str, str]:
        data = self.get("ConfigMap", name).get("data", {})
        assert isinstance(data, dict)
        return {str(key): str(value) for key, value in data.items()}

    def pod_templates(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(kind/name, pod spec)`` of every workload."""
        for doc in self.documents:
            kind, name = doc["kind"], doc["metadata"]["name"]
            if kind in ("Deployment", "StatefulSet", "Job"):
                yield f"{kind}/{name}", doc["spec"]["template"]["spec"]
            elif kind == "CronJob":
                yield f"{kind}/{name}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]

    def project_pods(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Pods whose containers run the project's own images."""
        for where, pod in self.pod_templates():
            if all(is_project_image(c["image"]) for c in pod["containers"]):
                yield where, pod


def is_project_image(image: str) -> bool:
    return image.startswith(PROJECT_IMAGE_PREFIX) and not image.startswith(THIRD_PARTY_IMAGES)


def build(path: Path) -> list[dict[str, Any]]:
    """``kustomize build`` of ``path``; a failure to get or run kustomize fails the test with
    what went wrong (these tests need Go and, on the first run, the Go module proxy)."""
    try:
        return kustomize.build(path)
    except InfraError as exc:
        pytest.fail(f"the Kubernetes manifests could not be rendered: {exc}", pytrace=False)


def build_overlay(name: str) -> Rendered:
    return Rendered(name, build(KUBERNETES / "overlays" / name))


def build_with_components(tmp: Path, overlay: str) -> Rendered:
    """``overlay`` with every component added, as docs/kubernetes.md tells an operator to:
    a ``components:`` list in the overlay's kustomization (here in a copy of the tree)."""
    copy = tmp / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    kustomization = copy / "overlays" / overlay / "kustomization.yaml"
    listed = "".join(f"  - ../../components/{name}\n" for name in COMPONENTS)
    kustomization.write_text(
        kustomization.read_text(encoding="utf-8") + f"\ncomponents:\n{listed}", encoding="utf-8"
    )
    return Rendered(f"{overlay}+components", build(copy / "overlays" / overlay))
