"""kustomize and KEDA's CRDs come from the Go toolchain: without it, or when it fails, the
error says what is missing and what to do, and no half-filled cache is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_devtools.errors import InfraError
from ecom_devtools.ops import keda, kustomize


def test_without_go_kustomize_fails_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InfraError, match=r"kustomize v5\.5\.0 needs the Go toolchain"):
        kustomize.ensure_kustomize(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_without_go_keda_s_crds_fail_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InfraError, match=r"KEDA .* needs the Go toolchain"):
        keda.crd_dir(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_failing_go_is_reported_with_its_last_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    go = bin_dir / "go"
    go.write_text("#!/bin/sh\necho 'go: module lookup disabled' >&2\nexit 1\n", encoding="utf-8")
    go.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(InfraError, match=r"exit 1.*module lookup disabled"):
        kustomize.ensure_kustomize(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_cached_kustomize_is_used_without_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = kustomize.kustomize_path(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_text("#!/bin/sh\n", encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert kustomize.ensure_kustomize(tmp_path) == cached
