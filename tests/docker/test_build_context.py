"""The images' build context, as ``docker build`` sends it: the files the images need, no more.

``.dockerignore`` leaves out everything but the pinned requirements and the Python packages'
``pyproject.toml`` and sources. The classic builder (``docker build`` without BuildKit, which
the engine here is) applies its exceptions differently from Compose's own context reader: an
exception under a wildcard folder re-includes nothing there unless the folder itself is
re-included. The context is listed by a throwaway image built by the classic builder from the
repository, as a user runs ``docker build --target <service> .``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.compose_files import ROOT
from tests.docker.compose import docker_overrides

pytestmark = pytest.mark.docker

IMAGE_REQUIREMENTS = ("runtime.txt", "report.txt", "build.txt")
LIST_CONTEXT = """\
FROM {base}
COPY . /context
RUN cd /context && find . -type f | sort
"""


def needed_files() -> set[str]:
    """What the Dockerfile copies: pinned requirements, and each package's metadata and sources."""
    wanted = {f"requirements/{name}" for name in IMAGE_REQUIREMENTS}
    packages = [ROOT / "shared", *sorted((ROOT / "services").iterdir())]
    for package in packages:
        wanted.add(str((package / "pyproject.toml").relative_to(ROOT)))
        for path in (package / "src").rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                wanted.add(str(path.relative_to(ROOT)))
    return wanted


def test_the_classic_builder_sends_what_the_images_need(tmp_path: Path) -> None:
    images = docker_overrides(tmp_path / "images.env")
    base = images.get("PYTHON_IMAGE", "python:3.11-slim-bookworm")
    done = subprocess.run(
        ["docker", "build", "--no-cache", "-f", "-", "."],
        input=LIST_CONTEXT.format(base=base),
        cwd=ROOT,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-5000:]
    sent = {line[2:] for line in done.stdout.splitlines() if line.startswith("./")}
    expected = needed_files()
    assert len(expected) > 100  # every package's sources, not a handful of files
    assert sent == expected, {"missing": expected - sent, "unwanted": sent - expected}
